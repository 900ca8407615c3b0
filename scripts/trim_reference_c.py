"""Copy the entries of shared/reference/losses_C.pt that the tests use into tests/data/reference/.

    python scripts/trim_reference_c.py [SHARED_REFERENCE_DIR]   (default: ../shared/reference)

The peer goldens (RepDistiller / mdistiller / logit-standardisation code, see the README beside the
source file) are kept as plain tensors, lists and dicts, for seed 0 (every shape case; CRD: seeds 0 and
1); provenance strings and the peer-vs-peer differences are left out. The tests read only the trimmed copy, so they run on a bare clone.
"""

from __future__ import annotations

import os
import sys

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "tests", "data", "reference", "losses_C.pt")
KEEP = {
    "at": ("seed", "shape", "hparams", "inputs", "per_pair", "output", "grads"),
    "fitnet": (
        "seed",
        "shape",
        "regressor",
        "regressor_state",
        "regressor_state_after",
        "inputs",
        "regressor_output",
        "output",
        "grads",
    ),
    "reviewkd_hcl": ("seed", "shape", "inputs", "per_level", "output", "grads"),
    "crd": ("seed", "shape", "hparams", "embed_state", "steps"),
    "kd_ls": (
        "seed",
        "shape",
        "temperatures",
        "inputs",
        "standardized",
        "outputs",
        "grads",
        "outputs_without_ls",
    ),
    "dkd_ls": (
        "seed",
        "shape",
        "hparams",
        "temperatures",
        "inputs",
        "standardized",
        "outputs",
        "grads",
        "tckd",
        "nckd",
        "outputs_without_ls",
    ),
}
SEEDS = {"crd": (0, 1)}  # seeds kept per loss (default: seed 0, every shape case)
STEP_KEEP = (
    "inputs",
    "embedded",
    "state_before",
    "memory_out",
    "s_loss",
    "t_loss",
    "output",
    "grads",
    "state_after",
)


def trim(src: dict) -> dict:
    out = {"meta": {"commits": dict(src["meta"]["commits"]), "source": "shared/reference/losses_C.pt"}}
    for name, fields in KEEP.items():
        entries = []
        for e in src[name]:
            if e["seed"] not in SEEDS.get(name, (0,)):
                continue
            kept = {k: e[k] for k in fields}
            if name == "crd":
                kept["steps"] = [{k: s[k] for k in STEP_KEEP} for s in e["steps"]]
            entries.append(kept)
        out[name] = entries
    return out


def main(ref_dir: str) -> None:
    src = torch.load(os.path.join(ref_dir, "losses_C.pt"), weights_only=True)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    torch.save(trim(src), OUT)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(REPO), "shared", "reference"))
