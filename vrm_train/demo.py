"""Build the demo runs the app opens by default (``data/demo``).

    vrm-train demo data/demo            # the committed demo: ~20 CPU-minutes
    vrm-train demo /tmp/demo --tiny     # the same runs on a few images for one epoch (tests)

The output folder is replaced only when it is new, empty, or an earlier demo output (it holds the marker
file ``.vrm-demo`` written first thing by every build); any other folder needs ``--force``.

From the Fashion-MNIST configs (``configs/fashion_mnist``): one teacher, then students trained with
vanilla, KD, DIST, RKD, VRM and three VRM ablations (no virtual views, no pruning, no inter-class term),
VRM and KD over two seeds (error bars in the Ablations view). Every run keeps relation snapshots at
several epochs and its first training batches. Only the student export ``student.pt`` is kept of the
checkpoints (``last.pt``/``best.pt`` carry optimizer state for resuming), to keep the folder small.
"""

from __future__ import annotations

import os
import shutil

from vrm_train.config import load_config
from vrm_train.engine import train
from vrm_train.fileio import atomic_write_text, output_errors
from vrm_train.resources import configs_dir
from vrm_train.rundir import RunDirError

CONFIGS = str(configs_dir() / "fashion_mnist")

# The VRM weights the committed demo was built with (2026-12-02). The default λ has since moved to the
# equal-budget study's validation choice (docs/benchmarks.md); the demo keeps the weights it was built with,
# so that a rebuild reproduces the runs the app's Learn VRM presets and their tests describe.
DEMO_VRM = ["vrm.lambda_is=16.0", "vrm.lambda_ic=16.0"]

# (run name, config file, overrides)
STUDENTS = [
    ("vanilla_resnet8", "vanilla.yaml", []),
    ("kd_resnet8", "kd.yaml", []),
    ("kd_resnet8_s1", "kd.yaml", ["seed=1"]),
    ("dist_resnet8", "dist.yaml", []),
    ("rkd_resnet8", "rkd.yaml", []),
    ("vrm_resnet8", "vrm.yaml", [*DEMO_VRM]),
    ("vrm_resnet8_s1", "vrm.yaml", [*DEMO_VRM, "seed=1"]),
    ("vrm_no_virtual_resnet8", "vrm.yaml", [*DEMO_VRM, "vrm.is_edges=real_only"]),
    ("vrm_no_pruning_resnet8", "vrm.yaml", [*DEMO_VRM, "vrm.is_edges=all", "vrm.uep=none"]),
    ("vrm_no_ic_resnet8", "vrm.yaml", [*DEMO_VRM, "vrm.lambda_ic=0.0"]),
]
TEACHER = "teacher_resnet20"
MARKER = ".vrm-demo"

FULL = [
    "data.subset_per_class=500",
    "data.val_per_class=100",
    "optim.epochs=6",
    "snapshot.epochs=[0,1,3,6]",
    "snapshot.probe_size=48",
    "snapshot.train_batches=2",
]
TEACHER_FULL = ["data.subset_per_class=1000", "optim.epochs=6", "snapshot.epochs=[6]"]
TINY = [
    "data.subset_per_class=8",
    "data.val_per_class=2",
    "data.batch_size=16",
    "optim.epochs=1",
    "snapshot.epochs=[0,1]",
    "snapshot.probe_size=12",
    "snapshot.train_batches=1",
]


def prepare_output(out: str, *, force: bool = False) -> None:
    """Empty ``out`` for a new build, refusing to delete a folder that is not an earlier demo output."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise RunDirError(f"{out} is a file, not a folder; choose another output folder for the demo")
    if os.path.isdir(out) and os.listdir(out):
        if not (force or os.path.isfile(os.path.join(out, MARKER))):
            entries = sorted(os.listdir(out))
            shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
            raise RunDirError(
                f"{out} is not empty ({shown}) and is not a demo output (no {MARKER} marker file): refusing to "
                "delete it. Choose a new or empty folder, or pass --force to replace it with everything in it."
            )
        shutil.rmtree(out)
    with output_errors(os.path.dirname(os.path.abspath(out))):
        os.makedirs(out, exist_ok=True)
        atomic_write_text(
            os.path.join(out, MARKER),
            "Built by `vrm-train demo`; the next `vrm-train demo` here replaces it.\n",
        )


def build_demo(out: str, *, tiny: bool = False, progress: bool = True, force: bool = False) -> list[str]:
    """Train the demo runs into ``out`` (see :func:`prepare_output`); returns the run directories."""
    prepare_output(out, force=force)
    common = TINY if tiny else FULL
    runs = []
    teacher_over = TINY if tiny else TEACHER_FULL
    cfg = load_config(
        os.path.join(CONFIGS, "teacher.yaml"), [*teacher_over, f"out_dir={out}", f"name={TEACHER}"]
    )
    teacher_dir = train(cfg, progress=progress)["run"]
    runs.append(teacher_dir)
    for name, file, extra in STUDENTS:
        over = [*common, *extra, f"out_dir={out}", f"name={name}", f"teacher.checkpoint={teacher_dir}"]
        cfg = load_config(os.path.join(CONFIGS, file), over)
        runs.append(train(cfg, progress=progress)["run"])
    for run in runs:
        _slim(run)
        _relative_teacher(run, out)
    return runs


def _slim(run: str) -> None:
    """Keep only the student export: the demo is for looking, not resuming (last/best hold optimizer state)."""
    for which in ("last", "best"):
        path = os.path.join(run, "checkpoints", f"{which}.pt")
        if os.path.isfile(path):
            os.remove(path)


def _relative_teacher(run: str, out: str) -> None:
    """Record the teacher path relative to the demo folder, so the committed demo opens from anywhere."""
    cfg_path = os.path.join(run, "config.yaml")
    with open(cfg_path, encoding="utf-8") as f:
        text = f.read()
    atomic_write_text(cfg_path, text.replace(os.path.abspath(out) + os.sep, ""))
