"""TensorBoard event files and offline W&B runs mirror metrics.csv; no network is used.

These tests need the optional extras (marker ``extras``): without them they fail with the install
command (``pip install 'vrm[tensorboard,wandb]'``), or are deselected explicitly with ``-m 'not extras'``.
"""

import csv
import glob
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from vrm_train.config import ConfigError, load_config
from vrm_train.engine import train

pytestmark = [pytest.mark.extras, pytest.mark.xdist_group("loggers")]

TINY = [
    "method=vanilla",
    "model.name=resnet8",
    "data.name=synthetic",
    "data.synthetic_size=96",
    "data.synthetic_classes=4",
    "data.image_size=16",
    "data.batch_size=32",
    "data.eval_batch_size=64",
    "optim.epochs=2",
    "snapshot.probe_size=8",
    "snapshot.train_batches=0",
    "log.every=1",
]


def need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.fail(
            f"the optional package {module!r} is missing: pip install 'vrm[tensorboard,wandb]', or run -m 'not extras'"
        )


def read_metrics(run):
    with open(os.path.join(run, "metrics.csv")) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tb_run(tmp_path_factory):
    need("tensorboard")
    out = tmp_path_factory.mktemp("tb")
    summary = train(
        load_config(None, [*TINY, "log.tensorboard=true", f"out_dir={out}", "name=tb"]), progress=False
    )
    return summary["run"]


def test_tensorboard_events_mirror_metrics_csv(tb_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(os.path.join(tb_run, "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"step/loss", "step/ce", "step/lr", "epoch/test_top1", "epoch/train_loss", "epoch/lr"} <= tags
    assert [e.step for e in acc.Scalars("step/loss")] == [1, 2, 3, 4, 5, 6]  # 3 batches x 2 epochs, every=1
    rows = read_metrics(tb_run)
    for col in ("test_top1", "train_loss", "lr", "epoch_time"):
        got = [(e.step, e.value) for e in acc.Scalars(f"epoch/{col}")]
        want = [(int(r["epoch"]), float(r[col])) for r in rows]
        assert [s for s, _ in got] == [s for s, _ in want]
        for (_, a), (_, b) in zip(got, want, strict=True):
            assert a == pytest.approx(b, rel=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tensorboard_serves_the_run(tb_run):
    """`tensorboard --logdir <runs>` on 127.0.0.1 lists the run and its scalars."""
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "tensorboard.main",
        "--logdir",
        os.path.dirname(tb_run),
        "--host",
        "127.0.0.1",
    ]
    proc = subprocess.Popen([*cmd, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, body = time.time() + 90, None
        while time.time() < deadline and body is None:
            try:
                url = f"http://127.0.0.1:{port}/data/plugin/scalars/tags"
                with urllib.request.urlopen(url, timeout=5) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(1)
        assert body is not None, "tensorboard did not answer within 90 s"
        run_key = next(k for k in body if k.startswith("tb"))
        assert {"step/loss", "epoch/test_top1"} <= set(body[run_key])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_wandb_offline_run_holds_the_epoch_columns(tmp_path, monkeypatch):
    need("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # any network attempt would fail
    summary = train(
        load_config(None, [*TINY, "log.wandb=true", f"out_dir={tmp_path}", "name=wb"]), progress=False
    )
    (log,) = glob.glob(os.path.join(summary["run"], "wandb", "offline-run-*", "*.wandb"))
    history = wandb_history(log)
    epochs = [h for h in history if "epoch/test_top1" in h]
    steps = [h for h in history if "step/loss" in h]
    rows = read_metrics(summary["run"])
    assert [h["epoch"] for h in epochs] == [1, 2] and [h["global_step"] for h in steps] == [1, 2, 3, 4, 5, 6]
    for h, row in zip(epochs, rows, strict=True):
        assert h["epoch/test_top1"] == pytest.approx(float(row["test_top1"]))
        assert h["epoch/train_loss"] == pytest.approx(float(row["train_loss"]))


def wandb_history(path: str) -> list[dict]:
    """The history rows of an offline .wandb file: a 7-byte header (":W&B", magic, version), then
    LevelDB-log records (crc32c 4 B, length 2 B little-endian, type 1 B: full / first / middle / last) in
    32 KiB blocks, each record a protobuf ``Record`` (wandb/proto/wandb_internal.proto)."""
    from wandb.proto import wandb_internal_pb2 as pb

    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    pos, block, parts, rows = 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        payload, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            break
        parts = payload if kind in (1, 2) else parts + payload
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(parts)
            if rec.WhichOneof("record_type") == "history":
                rows.append(
                    {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
                )
    return rows


def test_a_missing_extra_is_a_clear_error_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"needs the wandb package: pip install 'vrm\[wandb\]'"):
        train(load_config(None, [*TINY, "log.wandb=true", f"out_dir={tmp_path}", "name=x"]), progress=False)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match=r"needs the tensorboard package"):
        train(
            load_config(None, [*TINY, "log.tensorboard=true", f"out_dir={tmp_path}", "name=y"]),
            progress=False,
        )
    assert not os.path.exists(os.path.join(tmp_path, "x", "metrics.csv"))
