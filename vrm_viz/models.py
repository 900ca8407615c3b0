"""Load the student and teacher models of a run from their checkpoints, and run them on snapshot images.

    run = open_run("data/demo/vrm_resnet8")
    student, teacher = load_student(run), load_teacher(run)   # eval mode, CPU
    snap = run.snapshot("probe", epoch=6)
    x = snapshot_inputs(snap)                                  # normalised float images [B, C, H, W]
    logits, pooled = predict(student, x)

Every file goes through :func:`vrm_train.checkpoint.load_file` (``weights_only``: no code in a checkpoint
ever runs). Anything that cannot give a model raises :class:`ModelLoadError` with a message that says why
and what to do; it is a :class:`~vrm_train.checkpoint.CheckpointError` (a ``ValueError``).
"""

from __future__ import annotations

import os

import torch
from torch import nn

from vrm_train.build import resolve_checkpoint
from vrm_train.checkpoint import (
    CheckpointError,
    check_fits,
    extract_state_dict,
    guess_architecture,
    load_file,
)
from vrm_train.data import Normalize
from vrm_train.models import ZooModel, create_model

__all__ = [
    "ModelLoadError",
    "load_checkpoint_model",
    "load_student",
    "load_teacher",
    "normalize_images",
    "predict",
    "snapshot_inputs",
]


class ModelLoadError(CheckpointError):
    """A run or file that gives no usable model; the message says why."""


def load_checkpoint_model(path: str, *, arch: str | None = None) -> ZooModel:
    """The model stored in the checkpoint file ``path``, in eval mode on the CPU.

    The architecture is ``arch`` when given, else the one the file records (``"arch"``: our student
    exports), else the registered architecture whose keys and shapes match the weights exactly. The class
    count and input channels come from the file's metadata or, failing that, from the weights themselves.
    """
    obj = load_file(path)
    state = extract_state_dict(obj, path)
    meta = obj if isinstance(obj, dict) else {}
    recorded = meta.get("arch") if isinstance(meta.get("arch"), str) else None
    if arch and recorded and arch != recorded:
        raise ModelLoadError(
            f"{path} holds a '{recorded}' (recorded in the file) but '{arch}' was expected; "
            "the run's config and its checkpoint disagree"
        )
    name = arch or recorded or guess_architecture(state)
    if name is None:
        raise ModelLoadError(
            f"{path} does not say which architecture it holds and its weights match none of the model zoo; "
            "re-export it with vrm-train (checkpoints/student.pt records 'arch')"
        )
    mats = [v for v in state.values() if v.dim() == 2]
    convs = [v for v in state.values() if v.dim() == 4]
    num_classes = int(meta.get("num_classes") or (mats[-1].shape[0] if mats else 0))
    in_chans = int(meta.get("in_chans") or (convs[0].shape[1] if convs else 0))
    if num_classes < 1 or in_chans < 1:
        raise ModelLoadError(f"{path}: cannot tell the class count or input channels of these weights")
    try:
        model = create_model(name, num_classes=num_classes, in_chans=in_chans)
    except ValueError as e:
        raise ModelLoadError(f"{path}: {e}") from e
    check_fits(model, state, arch=name, path=path)
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_student(run) -> ZooModel:
    """The final student of ``run`` (``checkpoints/student.pt``, written when training ends)."""
    path = run.checkpoint("student")
    if path is None:
        raise ModelLoadError(
            f"run {run.name} has no student checkpoint (checkpoints/student.pt): it is still training or "
            "stopped before its last epoch; its snapshots are still available on the other pages"
        )
    return load_checkpoint_model(path, arch=None if run.student == "?" else run.student)


def load_teacher(run) -> ZooModel:
    """The teacher of ``run``: the checkpoint (file or run directory) its config names."""
    if run.teacher is None:
        raise ModelLoadError(
            f"run {run.name} is a '{run.method}' run: it was trained without a teacher, so there is no "
            "teacher model to show (pick a distillation run)"
        )
    named = (run.config.get("teacher") or {}).get("checkpoint")
    path = run.teacher_checkpoint()
    if path is None:
        raise ModelLoadError(
            f"the teacher checkpoint of run {run.name} ({named!r}) was not found, neither as given nor "
            f"relative to {os.path.dirname(run.path)}"
        )
    file, recorded = resolve_checkpoint(path)
    if recorded is not None and recorded != run.teacher:
        raise ModelLoadError(
            f"{path} holds a '{recorded}' (per its config.yaml) but run {run.name} names teacher "
            f"'{run.teacher}'"
        )
    return load_checkpoint_model(file, arch=run.teacher)


def normalize_images(images_u8: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 images [B, C, H, W] → float inputs of the models: (x/255 − mean) / std per channel."""
    if images_u8.dtype != torch.uint8 or images_u8.dim() != 4:
        raise ValueError(
            f"expected uint8 images [B, C, H, W]; got {images_u8.dtype} {tuple(images_u8.shape)}"
        )
    return Normalize(mean, std)(images_u8.float() / 255.0)


def snapshot_inputs(snap, *, virtual: bool = False) -> torch.Tensor:
    """The normalised model inputs of a snapshot's real (or virtual) view."""
    return normalize_images(snap.image_v if virtual else snap.image, snap.mean, snap.std)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [B, K], pooled features [B, D]) of ``model`` in eval mode (its mode is restored after)."""
    was = model.training
    model.eval()
    try:
        logits, feats = model(x, return_features=True)
    finally:
        model.train(was)
    return logits, feats["pooled"]
