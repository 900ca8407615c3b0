"""Copy the reference data the tests use from ``shared/reference`` into ``tests/data/reference`` (trimmed).

    python scripts/trim_reference.py /path/to/shared/reference    # writes tests/data/reference/

Run once when the shared reference data changes; the tests read only the copy inside the repository, so
the suite passes on a clone with nothing beside it. What is kept (and why) is written in the README there.
"""

from __future__ import annotations

import argparse
import os
import shutil

import torch

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "data", "reference")
# Peer-parity cases kept per loss: every shape of seed 0, and the smallest shape of seeds 1 and 2.
LOSS_CASES = [(0, 8), (0, 16), (0, 64), (1, 8), (2, 8)]
# Published-layout teacher checkpoints kept byte for byte, with their recorded inputs and outputs.
CHECKPOINTS = ["resnet20"]


def trim_losses(src: str, dst: str) -> None:
    golden = torch.load(src, weights_only=True)
    kept = {}
    for key, entries in golden.items():
        kept[key] = [e for e in entries if (e["seed"], e["shape"]["B"]) in LOSS_CASES]
        if len(kept[key]) != len(LOSS_CASES):
            raise SystemExit(f"{src}: {key} lacks some of the cases {LOSS_CASES}")
    torch.save(kept, dst)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shared_reference", help="the shared/reference folder of the peer data")
    src = ap.parse_args().shared_reference
    os.makedirs(os.path.join(OUT, "compat"), exist_ok=True)
    trim_losses(os.path.join(src, "losses_A.pt"), os.path.join(OUT, "losses_A.pt"))
    shutil.copyfile(
        os.path.join(src, "mdistiller_cifar_models.json"), os.path.join(OUT, "mdistiller_cifar_models.json")
    )
    for name in CHECKPOINTS:
        for suffix in ("_ckpt.pth", "_io.pt"):
            shutil.copyfile(
                os.path.join(src, "compat", name + suffix), os.path.join(OUT, "compat", name + suffix)
            )
    for dirpath, _, files in os.walk(OUT):
        for f in sorted(files):
            path = os.path.join(dirpath, f)
            print(f"{os.path.relpath(path, OUT)}: {os.path.getsize(path):,} bytes")


if __name__ == "__main__":
    main()
