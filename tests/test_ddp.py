"""Multi-process training (torch.distributed, gloo on CPU) against single-process computation."""

import csv
import json
import os
import socket
import sys

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from vrm_train import runtime as R
from vrm_train.config import load_config
from vrm_train.distillers import build_distiller

pytestmark = pytest.mark.xdist_group("ddp")
WORLD, B, NC = 2, 8, 6


class TinyNet(nn.Module):
    """No BatchNorm, so per-shard and full-batch forwards agree exactly."""

    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(12, 10), nn.Tanh())
        self.fc = nn.Linear(10, NC)
        self.num_features = 10

    def forward(self, x, return_features=False):
        f = self.body(x)
        out = self.fc(f)
        return (out, {"pooled": f, "maps": [x]}) if return_features else out


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(WORLD * B, 3, 2, 2, generator=g)
    return x, x + 0.5 * torch.randn(x.shape, generator=g), torch.randint(0, NC, (WORLD * B,), generator=g)


def _distiller(global_graphs):
    cfg = load_config(
        None,
        [
            "method=vrm",
            "teacher.name=x",
            "teacher.checkpoint=x",
            f"vrm.global_graphs={str(global_graphs).lower()}",
            "vrm.uep_ratio=0.25",
        ],
    )
    return build_distiller(cfg, TinyNet(0), TinyNet(1))


def _grads(module):
    return torch.cat([p.grad.flatten() for p in module.student.parameters()])


def _step_worker(rank, port, out_dir, global_graphs):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
    )
    rt = R.setup("cpu")
    d = _distiller(global_graphs)
    ddp = nn.parallel.DistributedDataParallel(d)
    x, x_v, y = _data()
    sl = slice(rank * B, (rank + 1) * B)
    out = ddp(x[sl], x_v[sl], y[sl], 1)
    sum(out["losses"].values()).backward()
    torch.save(
        {"grad": _grads(d), "vrm": out["losses"]["vrm"].detach()}, os.path.join(out_dir, f"r{rank}.pt")
    )
    R.teardown(rt)


@pytest.mark.parametrize("global_graphs", [False, True])
def test_ddp_gradients_match_single_process(tmp_path, global_graphs):
    mp.spawn(_step_worker, args=(_free_port(), str(tmp_path), global_graphs), nprocs=WORLD, join=True)
    res = [torch.load(tmp_path / f"r{r}.pt", weights_only=True) for r in range(WORLD)]
    x, x_v, y = _data()
    if global_graphs:
        # one graph over the whole global batch: DDP's averaged gradient is the full-batch gradient of
        # VRM, plus the mean of the per-shard cross-entropy gradients
        d = _distiller(False)
        out = d(x, x_v, y, 1)
        ce_local = []
        for r in range(WORLD):
            sl = slice(r * B, (r + 1) * B)
            ce_local.append(d.ce(d.student(x[sl]), y[sl]))
        (out["losses"]["vrm"] + sum(ce_local) / WORLD).backward()
        want = _grads(d)
        for r in res:
            torch.testing.assert_close(r["vrm"], out["losses"]["vrm"].detach())
    else:
        # graphs on each process's local batch (the default): the mean of the per-shard gradients
        per_shard = []
        for r in range(WORLD):
            d = _distiller(False)
            sl = slice(r * B, (r + 1) * B)
            out = d(x[sl], x_v[sl], y[sl], 1)
            sum(out["losses"].values()).backward()
            per_shard.append(_grads(d))
            torch.testing.assert_close(res[r]["vrm"], out["losses"]["vrm"].detach())
        want = sum(per_shard) / WORLD
    for r in res:
        torch.testing.assert_close(r["grad"], want, atol=1e-6, rtol=1e-5)


def _train_worker(rank, port, out_dir):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
    )
    from vrm_train.cli import main

    sys.stdout = open(os.path.join(out_dir, f"stdout_{rank}.txt"), "w")  # noqa: SIM115 - closed at exit
    code = main(
        [
            "teacher",
            "model.name=resnet8",
            "data.name=synthetic",
            "data.synthetic_size=128",
            "data.image_size=16",
            "data.batch_size=16",
            "data.eval_batch_size=50",
            "optim.epochs=1",
            f"out_dir={out_dir}",
            "name=ddp",
            "snapshot.probe_size=8",
            "device=cpu",
            "--no-progress",
        ]
    )
    sys.stdout.close()
    assert code == 0


def test_engine_under_two_processes(tmp_path):
    mp.spawn(_train_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    run = tmp_path / "ddp"
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1"]  # rank 0 alone wrote one row
    # the all-reduced test accuracy equals a single-process evaluation of the saved student
    from vrm_train.build import data_from_config
    from vrm_train.evaluate import evaluate
    from vrm_train.models import create_model

    cfg = load_config(str(run / "config.yaml"))
    data = data_from_config(cfg.data)
    model = create_model("resnet8", num_classes=10)
    model.load_state_dict(torch.load(run / "checkpoints" / "student.pt", weights_only=True)["model"])
    mean = torch.tensor(data.mean)[:, None, None]
    std = torch.tensor(data.std)[:, None, None]
    x = (data.test.images.float() / 255 - mean) / std
    m = evaluate(model, [(x, data.test.labels)], R.Runtime(torch.device("cpu")))
    assert float(rows[0]["test_top1"]) == pytest.approx(m["top1"], abs=1e-9)
    assert len(os.listdir(run / "snapshots")) >= 2
    # one summary, printed by rank 0, with the all-reduced accuracy (rank 1 printed 'NaN' before)
    summary = json.loads((tmp_path / "stdout_0.txt").read_text())
    assert summary["last_top1"] == pytest.approx(m["top1"], abs=1e-9)
    assert (tmp_path / "stdout_1.txt").read_text() == ""
