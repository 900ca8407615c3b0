"""Foreign checkpoints in the app's "Open checkpoints" flow: 3 snapshots of a 32-px CIFAR pair, timed.

    python -m bench.app_live            # prints the times; bench.app includes them in its table

The case of the issue that asked for it: a published-layout CIFAR resnet20 (``{"model": state_dict}``, no
architecture recorded, 100 classes) as teacher and a freshly initialised resnet8 as student, on a
100-class folder of 32×32 PNGs (``<root>/<class>/<image>.png``, 10 images per class, random pixels: the
time does not depend on what the pixels show). 3 snapshots = the probe batch (64 images) and 2 extra
batches of 64, the app's defaults. Timed: :func:`vrm_train.live.compute_live_snapshots` end to end
(checkpoint reading, folder listing, PNG decoding, both views through both models, writing), first call of
the process (cold) and the median of ``repeats`` more. Target: < 15 s.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from vrm_train.checkpoint import atomic_save
from vrm_train.config import DataConfig
from vrm_train.live import LiveSpec, compute_live_snapshots
from vrm_train.models import create_model

LIVE_TARGET_S = 15.0


def make_case(root: str, classes: int = 100, per_class: int = 10) -> tuple[str, str]:
    """(folder of 32×32 PNGs, published-layout resnet20 checkpoint) under ``root``."""
    rng = np.random.default_rng(0)
    folder = os.path.join(root, "pngs")
    for c in range(classes):
        os.makedirs(os.path.join(folder, f"class{c:03d}"))
        for i in range(per_class):
            pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, f"class{c:03d}", f"{i}.png"))
    torch.manual_seed(0)
    ckpt = os.path.join(root, "resnet20_cifar100.pth")
    atomic_save({"model": create_model("resnet20", num_classes=classes).state_dict(), "epoch": 240}, ckpt)
    return folder, ckpt


def live_times(repeats: int = 2) -> dict:
    """{"cold": s, "warm": median s, "inputs": what the models were fed, "snapshots": count}."""
    with tempfile.TemporaryDirectory(prefix="vrm-bench-live-") as tmp:
        folder, ckpt = make_case(tmp)
        times, out = [], {}
        for k in range(1 + repeats):
            spec = LiveSpec(
                teacher=ckpt,
                student_arch="resnet8",
                teacher_arch="resnet20",
                data=DataConfig(name="imagefolder", root=folder),
                out=os.path.join(tmp, f"live_{k}"),
                batches=2,
                batch_size=64,
            )
            t0 = time.perf_counter()
            out = compute_live_snapshots(spec, progress=False)
            times.append(time.perf_counter() - t0)
    return {
        "cold": times[0],
        "warm": statistics.median(times[1:]) if repeats else times[0],
        "inputs": out["inputs"],
        "snapshots": len(out["snapshots"]),
    }


def main() -> None:
    r = live_times()
    ok = "met" if r["warm"] < LIVE_TARGET_S and r["cold"] < LIVE_TARGET_S else "NOT met"
    print(
        f"{r['snapshots']} snapshots, resnet20 (published layout) → fresh resnet8, 100-class folder of 32×32 "
        f"PNGs: cold {r['cold']:.1f} s, warm {r['warm']:.1f} s (target < {LIVE_TARGET_S:.0f} s: {ok}); "
        f"inputs: {r['inputs']}; load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
