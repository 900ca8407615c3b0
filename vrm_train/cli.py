"""Command line: ``vrm-train teacher | distill | resume | eval | snapshot | demo | configs``.

Examples::

    vrm-train teacher --config configs/fashion_mnist/teacher.yaml
    vrm-train distill --config configs/fashion_mnist/vrm.yaml teacher.checkpoint=runs/teacher_fm optim.epochs=5
    vrm-train distill --config configs/cifar100/kd/resnet32x4_resnet8x4.yaml \\
        --teacher /path/resnet32x4_vanilla/ckpt_epoch_240.pth
    torchrun --nproc_per_node 8 -m vrm_train.cli distill --config configs/imagenet/vrm/resnet50_mobilenetv2.yaml
    vrm-train resume runs/vrm_resnet32x4_resnet8x4_cifar100_s0
    vrm-train resume runs/vrm_resnet32x4_resnet8x4_cifar100_s0 optim.lr=0.01 --change-schedule
    vrm-train eval runs/vrm_.../checkpoints/student.pt --data cifar100 --data-root ~/data/cifar

Configs are YAML files (see configs/); any key can be overridden with dotted ``key=value`` pairs. The
packaged configs can also be named (``--config fashion_mnist/vrm``) from any directory or an installed
package; ``vrm-train configs`` lists them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from vrm_train.checkpoint import CheckpointError
from vrm_train.config import ConfigError, ModelConfig, from_dict, load_config


def _user_errors() -> tuple[type[BaseException], ...]:
    from vrm_train.data import DatasetError
    from vrm_train.engine import NonFiniteLossError
    from vrm_train.fileio import OutputError
    from vrm_train.rundir import RunDirError
    from vrm_train.runlock import RunLockedError

    return (
        ConfigError,
        CheckpointError,
        DatasetError,
        NonFiniteLossError,
        FileExistsError,
        RunDirError,
        RunLockedError,
        OutputError,
    )


_CHANGE_HELP = (
    "on resume, allow changed training-schedule settings (optim.lr, optim.schedule, optim.milestones, "
    "optim.gamma, optim.warmup_epochs, optim.clip_grad_norm, log_every, snapshot.epochs, "
    "snapshot.train_batches); they apply from the next epoch and are recorded in the run's changes.json"
)


def _train_parser(sub, name: str, help_: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=help_)
    p.add_argument("--config", help="YAML config file (keys: see vrm_train/config.py); defaults if omitted")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. optim.lr=0.1")
    p.add_argument("--resume", action="store_true", help="continue the run directory of this config exactly")
    p.add_argument("--change-schedule", action="store_true", help=_CHANGE_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    return p


def _methods_help() -> str:
    from vrm_train.distillers import get_method, list_methods

    lines = [f"  {n:<10} {get_method(n).summary}" for n in list_methods()]
    return "methods (config key `method`; options in the section of the same name):\n" + "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vrm-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (repeatable): a module of your own that registers a method "
        "(see docs/adding_a_method.md)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub, "teacher", "train a network from scratch with cross-entropy (method=vanilla)")
    d = _train_parser(sub, "distill", "distil a student from a teacher with the config's method")
    d.epilog = _methods_help()
    d.formatter_class = argparse.RawDescriptionHelpFormatter
    d.add_argument(
        "--teacher",
        help="teacher: one of our run directories, or a checkpoint file (ours or a published "
        "{'model': state_dict} file); sets teacher.checkpoint",
    )
    d.add_argument("--teacher-arch", help="teacher architecture (default: teacher.name or the run's config)")
    r = sub.add_parser("resume", help="continue an interrupted run from its own saved config")
    r.add_argument("run_dir", help="the run directory (relative or absolute; it may have moved)")
    r.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="optim.epochs=N extends a run; data.root, device, teacher.checkpoint may point elsewhere; "
        "training-schedule keys need --change-schedule",
    )
    r.add_argument("--change-schedule", action="store_true", help=_CHANGE_HELP)
    r.add_argument("--no-progress", action="store_true")
    e = sub.add_parser("eval", help="evaluate a checkpoint (ours or published) on a dataset split")
    e.add_argument("checkpoint", help="checkpoint file or run directory")
    e.add_argument("--arch", help="architecture (read from our checkpoints/run dirs when omitted)")
    e.add_argument("--data", default=None, help="dataset name (default: the run's dataset)")
    e.add_argument("--data-root", default=None, help="dataset location (default: the dataset's default)")
    e.add_argument("--split", default="test", choices=["test", "val", "train"])
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--device", default="auto")
    sn = sub.add_parser(
        "snapshot",
        help="relation snapshots of any teacher/student checkpoint pair (opens in the app like a run)",
        description="Compute relation snapshots (the app's input) from checkpoints this trainer did not write: "
        "both models on the real and virtual views of the trainer's probe batch and of N more batches.",
    )
    sn.add_argument("--teacher", required=True, help="teacher checkpoint file or run directory")
    sn.add_argument(
        "--student", help="student checkpoint file or run directory (omit: a fresh --student-arch)"
    )
    sn.add_argument("--teacher-arch", help="teacher architecture (default: recorded with the checkpoint)")
    sn.add_argument("--student-arch", help="student architecture (default: recorded with the checkpoint)")
    sn.add_argument("--out", required=True, help="output folder (run-like: config.yaml + snapshots/)")
    sn.add_argument("--data", help="dataset name (default: the one recorded with the checkpoints)")
    sn.add_argument("--data-root", help="dataset location")
    sn.add_argument(
        "--split", default="test", choices=["train", "val", "test"], help="split of the extra batches"
    )
    sn.add_argument("--batches", type=int, default=2, help="extra batches besides the probe batch")
    sn.add_argument("--batch-size", type=int, default=64)
    sn.add_argument("--probe-size", type=int, help="probe batch size (default: the run's, else 64)")
    sn.add_argument(
        "--seed", type=int, default=0, help="seed of batch selection, virtual views and a fresh student"
    )
    sn.add_argument(
        "--virtual-ops", type=int, help="RandAugment ops of the virtual view (default: the run's)"
    )
    sn.add_argument("--virtual-magnitude", type=int, help="RandAugment magnitude in (0, 30)")
    sn.add_argument(
        "--image-size",
        type=int,
        help="input size in px (default: image folders get 32 for CIFAR-family models, 224 for ImageNet "
        "ones; fixed datasets keep their own size)",
    )
    sn.add_argument(
        "--normalization",
        choices=["cifar100", "cifar10", "imagenet", "fashion_mnist", "digits", "data", "dataset"],
        help="per-channel statistics (default: the dataset's; image folders: the model family's; "
        "data = measured on the probe images)",
    )
    sn.add_argument("--device", default="auto")
    sn.add_argument("--no-progress", action="store_true")
    m = sub.add_parser("demo", help="build the demo runs the app opens (Fashion-MNIST, a few CPU-minutes)")
    m.add_argument(
        "out",
        nargs="?",
        default="data/demo",
        help="output folder: new, empty, or an earlier demo output (replaced); anything else needs --force",
    )
    m.add_argument("--force", action="store_true", help="replace the output folder even if it is not a demo")
    m.add_argument("--tiny", action="store_true", help="a few images for one epoch (structure only)")
    m.add_argument("--no-progress", action="store_true")
    c = sub.add_parser("configs", help="list the packaged configs (names usable as --config NAME)")
    c.add_argument("prefix", nargs="?", default="", help="only names starting with this, e.g. cifar100/vrm")
    return parser


def _cmd_train(args) -> dict:
    from vrm_train.engine import train

    overrides = list(args.overrides)
    if args.command == "teacher":
        overrides.append("method=vanilla")
    if getattr(args, "teacher", None):
        overrides.append(f"teacher.checkpoint={args.teacher}")
    if getattr(args, "teacher_arch", None):
        overrides.append(f"teacher.name={args.teacher_arch}")
    cfg = load_config(args.config, overrides)
    if args.command == "teacher":
        cfg.teacher = None
    return train(cfg, resume=args.resume, progress=not args.no_progress, change_schedule=args.change_schedule)


def _cmd_resume(args) -> dict:
    from vrm_train.engine import train
    from vrm_train.resume import relocate_teacher
    from vrm_train.rundir import RunDir

    run = RunDir(args.run_dir)
    if not run.exists():
        raise ConfigError(f"{args.run_dir} is not a run directory (no config.yaml)")
    cfg = load_config(run.config, args.overrides)
    relocate_teacher(cfg, run.path)  # before out_dir changes: a relative teacher path was relative to it
    # the run is where it is now, whatever out_dir/name it was started with
    cfg.out_dir, cfg.name = os.path.dirname(run.path), os.path.basename(run.path)
    return train(cfg, resume=True, progress=not args.no_progress, change_schedule=args.change_schedule)


def _cmd_eval(args) -> dict:
    import torch

    from vrm_train import runtime as R
    from vrm_train.build import data_from_config, load_model, resolve_checkpoint
    from vrm_train.checkpoint import load_file
    from vrm_train.config import DataConfig
    from vrm_train.data import Normalize, make_loader
    from vrm_train.evaluate import evaluate

    _check_arch(args.arch, "--arch")
    file, arch = resolve_checkpoint(args.checkpoint)
    meta = load_file(file)
    arch = args.arch or arch or (meta.get("arch") if isinstance(meta, dict) else None)
    if not arch:
        raise ConfigError(f"{file} does not record its architecture; pass --arch NAME")
    saved = meta.get("config") if isinstance(meta, dict) else None
    saved_data = from_dict(saved).data if isinstance(saved, dict) else None
    if args.data:
        dcfg = saved_data if saved_data and saved_data.name == args.data else DataConfig(name=args.data)
    elif saved_data:
        dcfg = saved_data
    else:
        raise ConfigError(f"{file} does not record its dataset; pass --data NAME (and --data-root)")
    if args.data_root:
        dcfg.root = args.data_root
    rt = R.setup(args.device)
    data = data_from_config(dcfg)
    model = load_model(ModelConfig(arch, file), num_classes=data.num_classes, in_chans=data.in_chans).to(
        rt.device
    )
    if getattr(data, args.split) is None:
        raise ConfigError(f"dataset {dcfg.name} has no '{args.split}' split with this config")
    norm = Normalize(data.mean, data.std).to(rt.device)
    loader = make_loader(data, args.split, batch_size=args.batch_size, train=False, device=rt.device, seed=0)
    batches = ((norm(b.images.float() / 255.0), b.labels) for b in loader)
    with torch.no_grad():
        metrics = evaluate(model, batches, rt)
    return {"checkpoint": file, "arch": arch, "dataset": dcfg.name, "split": args.split, **metrics}


def _cmd_snapshot(args) -> dict:
    from vrm_train.config import DataConfig
    from vrm_train.live import LiveSpec, compute_live_snapshots

    _check_arch(args.teacher_arch, "--teacher-arch")
    _check_arch(args.student_arch, "--student-arch")
    data = None
    if args.data:
        data = DataConfig(name=args.data, root=args.data_root)
        from_dict({"method": "vanilla", "data": vars(data)})  # validates the dataset name
    spec = LiveSpec(
        teacher=args.teacher,
        student=args.student,
        teacher_arch=args.teacher_arch,
        student_arch=args.student_arch,
        out=args.out,
        data=data,
        split=args.split,
        batches=args.batches,
        batch_size=args.batch_size,
        probe_size=args.probe_size,
        seed=args.seed,
        virtual_num_ops=args.virtual_ops,
        virtual_magnitude=args.virtual_magnitude,
        image_size=args.image_size,
        normalization=args.normalization,
        device=args.device,
    )
    return compute_live_snapshots(spec, progress=not args.no_progress)


def _cmd_demo(args) -> dict:
    from vrm_train.demo import build_demo

    return {"runs": build_demo(args.out, tiny=args.tiny, progress=not args.no_progress, force=args.force)}


def _check_arch(name: str | None, option: str) -> None:
    from vrm_train.models import list_models

    if name is not None and name not in list_models():
        raise ConfigError(
            f"{option} {name}: unknown model (names are case-sensitive); available: {', '.join(list_models())}"
        )


def _cmd_configs(args) -> dict:
    from vrm_train.resources import configs_dir, list_configs

    return {"configs_dir": str(configs_dir()), "configs": list_configs(args.prefix)}


def main(argv: list[str] | None = None) -> int:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    plugins = pre.parse_known_args(argv)[0].plugin
    try:
        from vrm_train.distillers import load_plugins

        load_plugins(plugins)  # before the parser is built: its help lists the registered methods
    except ImportError as e:
        print(f"vrm-train: error: {e}", file=sys.stderr)
        return 2
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may come before or after options (argparse stops collecting them at an option)
    unknown = [a for a in extra if a.startswith("-") or "=" not in a or not hasattr(args, "overrides")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    commands = {
        "teacher": _cmd_train,
        "distill": _cmd_train,
        "resume": _cmd_resume,
        "eval": _cmd_eval,
        "demo": _cmd_demo,
        "snapshot": _cmd_snapshot,
        "configs": _cmd_configs,
    }
    try:
        result = commands[args.command](args)
    except _user_errors() as e:
        print(f"vrm-train {args.command}: error: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one summary (rank 0 holds the metrics)
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
