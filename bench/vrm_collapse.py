"""Do VRM runs collapse when the teacher's copies of one image differ by rounding? With and without the rule.

    python -m bench.vrm_collapse                       # digits, 3 seeds, ε = 1e-3 (minutes on 2 CPU cores)
    python -m bench.vrm_collapse --seeds 0 1 2 3 4 --eps 1e-5

For about 5 % of scikit-learn digits images the two RandAugment ops leave the image unchanged, so the real
and the virtual view coincide and so do the student's logits of the two (on the CPU, to the last bit). On
a GPU the teacher's logits of the two copies may differ by rounding; here the teacher's logits of every
virtual view identical to its real view get a relative perturbation ε·std·N(0, 1), the same in both arms.
Each seed trains the same VRM student twice: without the undefined-edge rule (``relations._undefined``
patched to find no undefined edge: the code before the rule) and with it (spec §2.4). A run collapses
when its last test top-1 is below ``--collapse-below`` (chance is 10 %). Protocol otherwise as
``bench.quality --dataset digits``: a resnet14 teacher, resnet8 students, 100 images per class.
"""

from __future__ import annotations

import argparse
import os

import torch

from vrm_train import relations as R
from vrm_train.config import load_config
from vrm_train.distillers.vrm import VRM
from vrm_train.engine import NonFiniteLossError, train


def common(args) -> list[str]:
    return [
        f"data.name={args.dataset}",
        f"data.subset_per_class={args.per_class}",
        "data.val_per_class=20",
        "data.eval_batch_size=500",
        "optim.schedule=cosine",
        "optim.warmup_epochs=1",
        "snapshot.epochs=[]",
        "snapshot.train_batches=0",
        "snapshot.probe_size=32",
        f"out_dir={args.out}",
    ]


class Perturbation:
    """Replaces VRM.teacher_forward: teacher logits of virtual views identical to their real view get noise."""

    def __init__(self, eps: float, seed: int):
        self.eps, self.gen, self.duplicated, self.seen = eps, torch.Generator().manual_seed(seed), 0, 0
        self.original = VRM.teacher_forward

    def __call__(self, distiller, views):
        logits, feats = self.original(distiller, views)
        b = views.shape[0] // 2
        same = (views[:b] == views[b:]).flatten(1).all(1)
        self.duplicated, self.seen = self.duplicated + int(same.sum()), self.seen + b
        noise = self.eps * logits[b:].std() * torch.randn(logits[b:].shape, generator=self.gen)
        return torch.cat([logits[:b], logits[b:] + same[:, None] * noise.to(logits.device)]), feats


def run_student(args, seed: int, rule: bool, teacher: str) -> dict:
    name = f"vrm_s{seed}_eps{args.eps:g}_{'rule' if rule else 'norule'}"
    over = [*common(args), "method=vrm", "model.name=resnet8", "teacher.name=resnet14"]
    over += [f"teacher.checkpoint={teacher}", f"optim.epochs={args.epochs}", f"seed={seed}", f"name={name}"]
    perturb, undefined = Perturbation(args.eps, seed), R._undefined
    VRM.teacher_forward = lambda self, views: perturb(self, views)
    if not rule:
        R._undefined = lambda a, b, diff, tol: torch.zeros(
            diff.shape[:-1], dtype=torch.bool, device=diff.device
        )
    try:
        if os.path.exists(os.path.join(args.out, name)):
            raise SystemExit(f"{os.path.join(args.out, name)} exists: choose another --out")
        s = train(load_config(None, over), progress=args.progress)
        out = {"last": s["last_top1"], "best": s["best_top1"], "stopped": ""}
    except NonFiniteLossError as e:
        out = {"last": float("nan"), "best": float("nan"), "stopped": str(e).split(" (")[0]}
    finally:
        VRM.teacher_forward, R._undefined = perturb.original, undefined
    out["duplicated"] = f"{perturb.duplicated}/{perturb.seen}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--eps", type=float, default=1e-3)
    ap.add_argument("--collapse-below", type=float, default=50.0)
    ap.add_argument("--out", default="runs/vrm_collapse")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()
    teacher = os.path.join(args.out, "teacher")
    if not os.path.isfile(os.path.join(teacher, "checkpoints", "student.pt")):
        over = [*common(args), "method=vanilla", "model.name=resnet14", "optim.epochs=6", "name=teacher"]
        train(load_config(None, over), progress=args.progress)
    rows = []
    for seed in args.seeds:
        for rule in (False, True):
            r = run_student(args, seed, rule, teacher)
            rows.append((seed, rule, r))
            print(f"seed {seed}, rule {'on' if rule else 'off'}: {r}", flush=True)
    print(
        f"\n{args.dataset}, ε = {args.eps:g} on the teacher's logits of duplicated views, {args.epochs} epochs.\n"
    )
    print("| seed | rule | last test top-1 | best test top-1 | duplicated views / images | stopped |")
    print("|---|---|---|---|---|---|")
    for seed, rule, r in rows:
        on = "on" if rule else "off"
        print(f"| {seed} | {on} | {r['last']:.2f} | {r['best']:.2f} | {r['duplicated']} | {r['stopped']} |")
    for rule in (False, True):
        lasts = [r["last"] for _, ru, r in rows if ru == rule]
        bad = sum(not (x >= args.collapse_below) for x in lasts)
        print(
            f"rule {'on' if rule else 'off'}: {bad} of {len(lasts)} runs collapsed (last test top-1 < {args.collapse_below:g} % or stopped)"
        )


if __name__ == "__main__":
    main()
