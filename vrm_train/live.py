"""Relation snapshots computed from any teacher/student checkpoint pair, in the trainer's exact format.

    vrm-train snapshot --teacher runs/teacher_x --student runs/kd_y --batches 4 --out runs/live_kd_y
    vrm-train snapshot --teacher resnet32x4.pth --teacher-arch resnet32x4 --student-arch resnet8x4 \\
        --data cifar100 --data-root ~/data --out runs/live_init     # student at initialisation

The output folder looks like a run (config.yaml + snapshots/), so the app opens it like any other:
``probe_eNNN.pt`` is the trainer's fixed probe batch (same test images, same virtual-view seed, so for the
final checkpoints it equals the snapshot the trainer wrote), ``train_eNNN_bKK.pt`` are ``batches`` extra
batches drawn from ``split`` with seeds recorded in each file (``seed`` + k), so the same batches come back.
Both models run in eval mode on both views. NNN is the student checkpoint's epoch (0 at initialisation).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn
from tqdm.auto import tqdm

from vrm_train import runtime as R
from vrm_train.build import data_from_config, resolve_checkpoint
from vrm_train.checkpoint import CheckpointError, check_fits, extract_state_dict, load_file
from vrm_train.config import ConfigError, DataConfig, from_dict
from vrm_train.data import NORMALIZATION, ImageFolderDataset, Normalize, VirtualView, resize_center_crop
from vrm_train.fileio import atomic_write_text
from vrm_train.live_inputs import (
    NORMALIZATIONS,
    InputPlan,
    check_fit,
    fitting_datasets,
    folder_root,
    measured_stats,
    plan_inputs,
    state_shape,
)
from vrm_train.models import create_model, model_family
from vrm_train.rundir import RunDir
from vrm_train.snapshots import probe_indices, relation_snapshot, save_snapshot


@dataclass
class LiveSpec:
    """What to compute. ``student`` may be None: a freshly initialised ``student_arch`` (seeded)."""

    teacher: str
    out: str
    student: str | None = None
    teacher_arch: str | None = None
    student_arch: str | None = None
    data: DataConfig | None = None  # None: the dataset recorded in the checkpoints' run config
    split: str = "test"
    batches: int = 2
    batch_size: int = 64
    probe_size: int | None = None  # None: the probe size of the run config (64 without one)
    probe_seed: int | None = None
    seed: int = 0
    virtual_num_ops: int | None = None
    virtual_magnitude: int | None = None
    device: str = "auto"
    # Use the images (and classes, normalisation) of an existing snapshot instead of a dataset, e.g. the
    # demo's probe batch: the probe job then covers exactly those images, with the snapshot's seed.
    images_from: str | None = None
    # Input size in px (None: inferred, see vrm_train.live_inputs.plan_inputs) and normalisation (None:
    # inferred; a name of live_inputs.NORMALIZATIONS, "data" = measured on the probe images, "dataset").
    image_size: int | None = None
    normalization: str | None = None


def _describe(path: str, arch: str | None, role: str) -> tuple[str, str, dict, dict | None]:
    """(file, architecture, state dict, run config or None) of a checkpoint given as a file or run dir."""
    file, recorded = resolve_checkpoint(path)
    obj = load_file(file)
    config = obj.get("config") if isinstance(obj, dict) and isinstance(obj.get("config"), dict) else None
    if config is None and os.path.isdir(path):
        with open(RunDir(path).config, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    stored = recorded or (obj.get("arch") if isinstance(obj, dict) else None)
    if arch and stored and arch != stored:
        raise CheckpointError(f"the {role} checkpoint {path} holds a '{stored}', not the requested '{arch}'")
    arch = arch or stored
    if not arch:
        raise ConfigError(
            f"the {role} checkpoint {file} does not record its architecture: pass --{role}-arch NAME"
        )
    return file, arch, extract_state_dict(obj, file), config


def _build(
    arch: str, state: dict | None, file: str, *, num_classes: int, in_chans: int, role: str
) -> nn.Module:
    model = create_model(arch, num_classes=num_classes, in_chans=in_chans)
    if state is not None:
        try:
            check_fits(model, state, arch=arch, path=file)
        except CheckpointError as e:
            raise CheckpointError(f"{role}: {e}") from e
        model.load_state_dict(state)
    return model.eval()


def _images(split, idx: torch.Tensor, size: int | None = None, whole: bool = False) -> torch.Tensor:
    """uint8 images at ``idx``: an in-memory split's (resized to ``size`` when given), or an image folder's
    decoded and brought to ``size`` (``whole``: the shorter side to ``size``, CIFAR-style; otherwise the
    ImageNet-style resize to size·256/224 and centre crop)."""
    if hasattr(split, "images"):
        x = split.images[idx]
        if size is None or (x.shape[-1] == size and x.shape[-2] == size):
            return x
        y = F.interpolate(x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return y.round().clamp(0, 255).to(torch.uint8)
    out = []
    for i in idx.tolist():
        img = resize_center_crop(split.load(i), size, resize_size=size if whole else None)
        out.append(torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1))
    return torch.stack(out)


@dataclass
class _Source:
    """What the snapshots are computed on: a dataset bundle, or the images of an existing snapshot."""

    classes: list[str]
    mean: list[float]
    std: list[float]
    num_classes: int
    in_chans: int
    name: str


def _snapshot_source(path: str) -> tuple[_Source, dict]:
    from vrm_train.snapshots import load_snapshot

    snap = load_snapshot(path)
    src = _Source(
        list(snap["classes"]),
        list(snap["mean"]),
        list(snap["std"]),
        len(snap["classes"]),
        int(snap["image"].shape[1]),
        f"snapshot:{os.path.basename(path)}",
    )
    return src, snap


def _folder_data(dcfg: DataConfig) -> SimpleNamespace:
    """An image folder as train/test splits: ``root/train`` + ``root/val``, or ``root`` itself for both."""
    train_dir, val_dir = folder_root(dcfg.root)
    train = ImageFolderDataset(train_dir, train=False)
    test = train if val_dir == train_dir else ImageFolderDataset(val_dir, train=False, classes=train.classes)
    mean, std = NORMALIZATION["imagefolder"]
    return SimpleNamespace(
        train=train, val=None, test=test, classes=train.classes, num_classes=len(train.classes), in_chans=3,
        mean=mean, std=std,
    )  # fmt: skip


def _normalization(plan: InputPlan, data, probe_images) -> tuple[list[float], list[float]]:
    """(mean, std) of the plan's normalisation for ``data``'s channels."""
    if plan.normalization == "dataset":
        return list(data.mean), list(data.std)
    if plan.normalization == "data":
        return measured_stats(probe_images())
    mean, std = NORMALIZATIONS[plan.normalization]
    if len(mean) == 1 and data.in_chans > 1:
        mean, std = mean * data.in_chans, std * data.in_chans
    if len(mean) != data.in_chans:
        raise ConfigError(
            f"{plan.normalization} normalisation has {len(mean)} channels but the images have "
            f"{data.in_chans}; choose another normalisation"
        )
    return list(mean), list(std)


def _jobs_from_data(spec: LiveSpec, dcfg: DataConfig, saved, device, plan: InputPlan, whole: bool):
    """(source, views, jobs) for a dataset: the trainer's probe batch and ``spec.batches`` seeded batches."""
    data = _folder_data(dcfg) if dcfg.name == "imagefolder" else data_from_config(dcfg)
    split = getattr(data, spec.split, None)
    if split is None:
        raise ConfigError(f"dataset {dcfg.name} has no '{spec.split}' split here")
    probe_size = spec.probe_size or (saved.snapshot.probe_size if saved else 64)
    probe_seed = (
        spec.probe_seed if spec.probe_seed is not None else (saved.snapshot.probe_seed if saved else 0)
    )
    load = partial(_images, size=plan.image_size, whole=whole)
    idx = probe_indices(data.test.labels, probe_size, probe_seed)
    jobs = [("probe", -1, probe_seed, "test", partial(load, data.test, idx), data.test.labels[idx], idx)]
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(spec.seed))
    for k in range(spec.batches):
        idx = order[k * spec.batch_size : (k + 1) * spec.batch_size]
        if idx.numel() < 2:
            break
        jobs.append(
            ("train", k, spec.seed + k, spec.split, partial(load, split, idx), split.labels[idx], idx)
        )
    mean, std = _normalization(plan, data, jobs[0][4])
    views = SimpleNamespace(
        virtual=VirtualView(num_ops=dcfg.virtual_num_ops, magnitude=dcfg.virtual_magnitude).to(device),
        normalize=Normalize(mean, std).to(device),
    )
    src = _Source(list(data.classes), mean, std, data.num_classes, data.in_chans, dcfg.name)
    return src, views, jobs


def _jobs_from_snapshot(path: str, dcfg: DataConfig, device):
    """(source, views, jobs) for the images of an existing snapshot (one job, the snapshot's own seed)."""
    src, snap = _snapshot_source(path)
    views = SimpleNamespace(
        virtual=VirtualView(num_ops=dcfg.virtual_num_ops, magnitude=dcfg.virtual_magnitude).to(device),
        normalize=Normalize(src.mean, src.std).to(device),
    )
    split = snap.get("split", "test")
    job = ("probe", -1, int(snap["seed"]), split, lambda: snap["image"], snap["targets"], snap["index"])
    return src, views, [job]


def compute_live_snapshots(spec: LiveSpec, *, progress: bool = True, callback=None) -> dict:
    """Compute and write the snapshots; ``callback(done, total, label)`` is called after each batch."""
    t_file, t_arch, t_state, t_cfg = _describe(spec.teacher, spec.teacher_arch, "teacher")
    s_file = s_arch = s_state = s_cfg = None
    if spec.student:
        s_file, s_arch, s_state, s_cfg = _describe(spec.student, spec.student_arch, "student")
    elif not spec.student_arch:
        raise ConfigError(
            "without a student checkpoint, name the architecture to initialise: --student-arch NAME"
        )
    s_arch = s_arch or spec.student_arch
    run_cfg = s_cfg or t_cfg
    saved = from_dict(run_cfg) if isinstance(run_cfg, dict) and run_cfg.get("method") else None
    dcfg = copy.deepcopy(spec.data or (saved.data if saved else None))
    if dcfg is None and not spec.images_from:
        raise ConfigError("no dataset recorded with these checkpoints: pass --data NAME (and --data-root)")
    dcfg = dcfg or DataConfig()
    if spec.virtual_num_ops is not None:
        dcfg.virtual_num_ops = spec.virtual_num_ops
    if spec.virtual_magnitude is not None:
        dcfg.virtual_magnitude = spec.virtual_magnitude
    rt = R.setup(spec.device)
    shapes = {"teacher": state_shape(t_state), "student": state_shape(s_state) if s_state else None}
    plan = None
    if spec.images_from:
        src, views, jobs = _jobs_from_snapshot(spec.images_from, dcfg, rt.device)
    else:
        for role, shape in shapes.items():
            check_fit(role, shape, dcfg)  # before any data is loaded or model built
        plan = plan_inputs(
            [t_arch, s_arch],
            dcfg,
            shapes["teacher"][0] if shapes["teacher"] else 0,
            image_size=spec.image_size,
            normalization=spec.normalization,
        )
        whole = {model_family(t_arch), model_family(s_arch)} == {"cifar"}
        src, views, jobs = _jobs_from_data(spec, dcfg, saved, rt.device, plan, whole)
    for role, shape in shapes.items():
        if shape is not None and shape != (src.num_classes, src.in_chans):
            raise ConfigError(
                f"the {role} checkpoint has {shape[0]} classes and {shape[1]} input channel(s), but "
                f"{src.name} has {src.num_classes} classes and {src.in_chans}; datasets that fit: "
                f"{'; '.join(fitting_datasets(*shape))}"
            )
    kw = dict(num_classes=src.num_classes, in_chans=src.in_chans)
    teacher = _build(t_arch, t_state, t_file, role="teacher", **kw).to(rt.device)
    torch.manual_seed(spec.seed)  # a fresh student is initialised reproducibly
    student = _build(s_arch, s_state, s_file or "<initialised>", role="student", **kw).to(rt.device)
    epoch = 0
    if s_file:
        obj = load_file(s_file)
        epoch = int(obj.get("epoch", 0)) if isinstance(obj, dict) and isinstance(obj.get("epoch"), int) else 0

    run = RunDir(spec.out)
    os.makedirs(run.file("snapshots"), exist_ok=True)
    meta = {
        "method": "live",
        "student_arch": s_arch,
        "teacher_arch": t_arch,
        "dataset": src.name,
        "classes": src.classes,
        "mean": src.mean,
        "std": src.std,
    }
    written = []
    for n, (kind, k, seed, split, images, targets, index) in enumerate(
        tqdm(jobs, desc="live snapshots", disable=not progress)
    ):
        tensors = relation_snapshot(
            student,
            teacher,
            images().to(rt.device),
            virtual_view=views.virtual,
            normalize=views.normalize,
            virtual_seed=seed,
        )
        tensors.update(targets=targets, index=index)
        path = run.probe_snapshot(epoch) if kind == "probe" else run.train_snapshot(epoch, k)
        save_snapshot(
            path, tensors, {**meta, "kind": kind, "split": split, "epoch": epoch, "batch": k, "seed": seed}
        )
        written.append(path)
        if callback is not None:
            callback(n + 1, len(jobs), os.path.basename(path))
    config = {
        "method": "live",
        "name": os.path.basename(os.path.abspath(spec.out)),
        "model": {"name": s_arch, "checkpoint": s_file},
        "teacher": {"name": t_arch, "checkpoint": t_file},
        "data": {**vars(dcfg), "name": src.name} if spec.images_from else vars(dcfg),
        "live": {
            "images_from": spec.images_from,
            "split": spec.split,
            "batches": spec.batches,
            "batch_size": spec.batch_size,
            "seed": spec.seed,
            "probe_size": int(jobs[0][6].numel()),
            "probe_seed": jobs[0][2],
            "epoch": epoch,
            "image_size": plan.image_size if plan else None,
            "normalization": plan.normalization if plan else "snapshot",
            "inputs": plan.describe() if plan else "the snapshot's images and normalisation",
        },
    }
    atomic_write_text(run.config, yaml.safe_dump(config, sort_keys=False))
    return {
        "out": run.path,
        "snapshots": written,
        "teacher": t_arch,
        "student": s_arch,
        "epoch": epoch,
        "inputs": config["live"]["inputs"],
        "image_size": config["live"]["image_size"],
    }
