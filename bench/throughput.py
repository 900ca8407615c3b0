"""Training-step throughput: our engine against a minimal hand-written loop, and VRM against KD.

    python -m bench.throughput                                   # CPU: resnet20 -> resnet8, batch 64
    python -m bench.throughput --device cuda --teacher resnet32x4 --student resnet8x4 --amp bf16 \\
        --channels-last --section throughput_gpu                 # GPU: the standard CIFAR-100 pair

Both sides get the same models (same initial weights), the same CIFAR-shaped uint8 batches held on the
device, the same on-device real view (crop + flip) and normalisation. The hand-written loop is what a
careful researcher writes for KD: forward both models, CE + KD, backward, SGD step. The engine's time is
its real ``Trainer.train_epoch`` (distiller dispatch, loss dict, metric accumulation, per-step LR, tqdm
bookkeeping, NaN checks) over the same number of steps. Timings are medians over interleaved repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from bench.report import machine, markdown_table, write_section
from vrm_train.checkpoint import atomic_save
from vrm_train.config import load_config
from vrm_train.engine import Trainer
from vrm_train.models import create_model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_trainer(args, method: str, teacher_ckpt: str, out: str) -> Trainer:
    n = args.steps * args.batch_size
    over = [
        f"method={method}",
        "data.name=synthetic",
        f"data.synthetic_size={n}",
        "data.synthetic_classes=100",
        "data.image_size=32",
        f"data.batch_size={args.batch_size}",
        f"model.name={args.student}",
        f"teacher.name={args.teacher}",
        f"teacher.checkpoint={teacher_ckpt}",
        f"device={args.device}",
        f"amp={args.amp}",
        f"channels_last={str(args.channels_last).lower()}",
        "kd.ce_weight=1.0",
        "kd.kd_weight=1.0",
        f"out_dir={out}",
        f"name={method}",
        "optim.epochs=1000",
        "log_every=50",
    ]
    trainer = Trainer(load_config(None, over), progress=False)
    trainer.snapshot_epochs = []  # measure training steps only
    return trainer


def time_engine(trainer: Trainer, epoch: int) -> float:
    sync(trainer.rt.device)
    t0 = time.perf_counter()
    trainer.train_epoch(epoch)
    sync(trainer.rt.device)
    return (time.perf_counter() - t0) / len(trainer.train_loader)


def time_hand_loop(trainer: Trainer, student, teacher, opt, temperature: float = 4.0) -> float:
    """The minimal KD loop on the same batches and views as the engine's trainer."""
    dev, amp = trainer.rt.device, trainer.cfg.amp
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    amp_ctx = (
        contextlib.nullcontext if amp == "off" else functools.partial(torch.autocast, "cuda", dtype=dtype)
    )
    loader, views = trainer.train_loader, trainer.views
    loader.set_epoch(0)
    student.train()
    sync(dev)
    t0 = time.perf_counter()
    for batch in loader:
        x = views.normalize(views.real(batch.images))
        if trainer.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with amp_ctx():
            s = student(x)
            with torch.no_grad():
                t = teacher(x)
        s, t = s.float(), t.float()
        p_t = F.softmax(t / temperature, dim=1)
        kd = F.kl_div(F.log_softmax(s / temperature, dim=1), p_t, reduction="batchmean") * temperature**2
        loss = F.cross_entropy(s, batch.labels) + kd
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(dev)
    return (time.perf_counter() - t0) / len(loader)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--teacher", default="resnet20")
    ap.add_argument("--student", default="resnet8")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20, help="training steps per timed repeat")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"])
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--epoch-images", type=int, default=50000, help="images per epoch for the projection")
    ap.add_argument("--section", default="throughput")
    args = ap.parse_args()
    torch.manual_seed(0)

    with tempfile.TemporaryDirectory() as out:
        teacher_ckpt = f"{out}/teacher.pt"
        atomic_save({"model": create_model(args.teacher, num_classes=100).state_dict()}, teacher_ckpt)
        trainers = {m: make_trainer(args, m, teacher_ckpt, out) for m in ("kd", "vrm")}
        kd = trainers["kd"]
        student = create_model(args.student, num_classes=100).to(kd.rt.device)
        student.load_state_dict(kd.student.state_dict())
        teacher = kd.distiller.teacher
        if args.channels_last:
            student = student.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        # warm-up (allocator, cuDNN autotuning, lazy kernels)
        time_hand_loop(kd, student, teacher, opt)
        for t in trainers.values():
            time_engine(t, 1)
        times: dict[str, list[float]] = {"hand": [], "kd": [], "vrm": []}
        for r in range(args.repeats):
            times["hand"].append(time_hand_loop(kd, student, teacher, opt))
            times["kd"].append(time_engine(kd, 2 + r))
            times["vrm"].append(time_engine(trainers["vrm"], 2 + r))
            print(
                f"repeat {r + 1}/{args.repeats}: "
                + ", ".join(f"{k} {v[-1] * 1e3:.1f} ms" for k, v in times.items())
            )
        med = {k: statistics.median(v) for k, v in times.items()}
        # Paired ratios: the three loops of one repeat ran back to back, so machine-speed drift between
        # repeats (large on a shared 2-core box) cancels in each repeat's ratio.
        ratio = {
            "kd": [k / h for k, h in zip(times["kd"], times["hand"], strict=True)],
            "vrm": [v / h for v, h in zip(times["vrm"], times["hand"], strict=True)],
            "vrm_kd": [v / k for v, k in zip(times["vrm"], times["kd"], strict=True)],
        }

    def paired(key: str) -> str:
        r = ratio[key]
        return f"{statistics.median(r):.3f} ({min(r):.3f}–{max(r):.3f})"

    b = args.batch_size
    kd_ok = "met" if statistics.median(ratio["kd"]) <= 1.05 else "NOT met"
    vrm_ok = "met" if statistics.median(ratio["vrm_kd"]) <= 2.3 else "NOT met"
    rows = [
        ["hand-written KD loop", f"{med['hand'] * 1e3:.1f}", f"{b / med['hand']:.0f}", "1", ""],
        [
            "engine, KD",
            f"{med['kd'] * 1e3:.1f}",
            f"{b / med['kd']:.0f}",
            paired("kd"),
            f"target ≤ 1.05 vs hand loop: {kd_ok}",
        ],
        [
            "engine, VRM",
            f"{med['vrm'] * 1e3:.1f}",
            f"{b / med['vrm']:.0f}",
            paired("vrm"),
            f"VRM / KD = {paired('vrm_kd')}, target ≤ 2.3: {vrm_ok}",
        ],
    ]
    epoch_h = {k: args.epoch_images / b * med[k] / 3600 for k in ("kd", "vrm")}
    text = (
        f"Command: `python -m bench.throughput {' '.join(_argv())}`  \n"
        f"Machine: {machine()}  \n"
        f"{args.teacher} → {args.student}, batch {b}, CIFAR-shaped 32×32×3 uint8 data on {args.device}, "
        f"amp={args.amp}, channels_last={args.channels_last}; {args.repeats} interleaved repeats of "
        f"{args.steps} steps. Times: medians over repeats; ratios: median (min–max) of the per-repeat "
        "ratios (each repeat runs the three loops back to back).\n\n"
        + markdown_table(["loop", "ms / step", "images / s", "time vs hand loop (paired)", "note"], rows)
        + f"\n\nProjected 240-epoch run on {args.epoch_images} images/epoch: KD {240 * epoch_h['kd']:.1f} h, "
        f"VRM {240 * epoch_h['vrm']:.1f} h (training steps only, evaluation excluded)."
    )
    print(text)
    write_section(args.section, f"## Training throughput ({args.section})\n\n" + text)


def _argv() -> list[str]:
    import sys

    return sys.argv[1:]


if __name__ == "__main__":
    main()
