"""Are the two copies of a duplicated image bit-identical in the logits? (The question behind spec §2.4.)

    python -m bench.view_duplicates --device cuda          # on a GPU: with and without TF32, fp32 and bf16
    python -m bench.view_duplicates --device cpu --batches 2

Draws training batches of digits with the trainer's own real and virtual views, finds the images whose
virtual view equals the real view exactly (RandAugment left them unchanged), runs a teacher (eval mode)
and a student (train mode, as in a VRM step: one forward of [real; virtual]) and logs, per duplicated
image, whether the real and virtual logits are exactly equal and their relative gap
‖z − z̃‖ / √(‖z‖² + ‖z̃‖²) (edges at or below vrm.edge_tol = 1e-5 are undefined). Settings: every
combination of ``torch.backends.cudnn.allow_tf32`` / ``torch.backends.cuda.matmul.allow_tf32`` on and off
and amp off / bf16 (CUDA only). Models: ``--teacher`` / ``--student`` run directories, else freshly
initialised resnet14 / resnet8 (rounding does not depend on training).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os

import torch

from vrm_train.build import data_from_config, load_model, views_from_config
from vrm_train.config import ModelConfig, load_config
from vrm_train.data import make_loader
from vrm_train.models import create_model


def models(args, nc: int, ch: int, device: torch.device):
    def one(run: str | None, arch: str):
        if run:
            return load_model(ModelConfig(name=arch, checkpoint=run), num_classes=nc, in_chans=ch)
        torch.manual_seed(0)
        return create_model(arch, num_classes=nc, in_chans=ch)

    return one(args.teacher, "resnet14").to(device).eval(), one(args.student, "resnet8").to(device).train()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--teacher", help="teacher run directory (resnet14)")
    ap.add_argument("--student", help="student run directory (resnet8)")
    ap.add_argument("--out", help="CSV file for the per-image rows")
    args = ap.parse_args()
    device = torch.device(args.device)
    cfg = load_config(
        None,
        [
            "method=vanilla",
            f"data.name={args.dataset}",
            f"data.batch_size={args.batch_size}",
            f"device={args.device}",
        ],
    )
    data = data_from_config(cfg.data)
    views = views_from_config(cfg.data, data, device)
    teacher, student = models(args, data.num_classes, data.in_chans, device)
    loader = make_loader(data, "train", batch_size=args.batch_size, train=True, device=device, seed=0)
    torch.manual_seed(0)
    batches = []
    for i, batch in enumerate(loader):
        if i == args.batches:
            break
        x01 = views.real(batch.images)
        xv01 = views.virtual(x01)
        batches.append((views.normalize(x01), views.normalize(xv01)))
    tf32 = (False, True) if device.type == "cuda" else (False,)
    amps = ("off", "bf16") if device.type == "cuda" else ("off",)
    rows = []
    for allow, amp in itertools.product(tf32, amps):
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allow
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp == "bf16" else contextlib.nullcontext()
        for k, (x, x_v) in enumerate(batches):
            dup = (x == x_v).flatten(1).all(1).nonzero().flatten().tolist()
            b = x.shape[0]
            with torch.no_grad(), ctx:
                both = torch.cat([x, x_v])
                z = {"teacher": teacher(both).float(), "student": student(both).float()}
            for i in dup:
                row = dict(tf32=allow, amp=amp, batch=k, image=i)
                for name, out in z.items():
                    a, a_v = out[i].double(), out[b + i].double()
                    gap = float((a - a_v).norm() / (a.pow(2).sum() + a_v.pow(2).sum()).sqrt())
                    row[f"{name}_equal"], row[f"{name}_gap"] = bool(torch.equal(out[i], out[b + i])), gap
                rows.append(row)
    header = list(rows[0]) if rows else []
    if args.out and rows:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(",".join(header) + "\n")
            f.writelines(",".join(str(r[h]) for h in header) + "\n" for r in rows)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    n_img = len(batches) * args.batch_size
    print(
        f"{args.dataset} on {name}: {len(rows) // (len(tf32) * len(amps))} duplicated views in {n_img} images\n"
    )
    print(
        "| TF32 | amp | duplicated | student equal | teacher equal | teacher unequal while student equal | largest gap (student / teacher) |"
    )
    print("|---|---|---|---|---|---|---|")
    for allow, amp in itertools.product(tf32, amps):
        sel = [r for r in rows if r["tf32"] == allow and r["amp"] == amp]
        s_eq, t_eq = sum(r["student_equal"] for r in sel), sum(r["teacher_equal"] for r in sel)
        bad = sum(r["student_equal"] and not r["teacher_equal"] for r in sel)
        gaps = [max((r[f"{m}_gap"] for r in sel), default=0.0) for m in ("student", "teacher")]
        print(f"| {allow} | {amp} | {len(sel)} | {s_eq} | {t_eq} | {bad} | {gaps[0]:.2e} / {gaps[1]:.2e} |")


if __name__ == "__main__":
    main()
