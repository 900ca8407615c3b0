"""Where a run executes: device, distributed process group, seeds, determinism, mixed precision."""

from __future__ import annotations

import contextlib
import os
import resource
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> Runtime:
    """Pick the device and join the process group when launched by ``torchrun``.

    torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; each process then uses ``cuda:LOCAL_RANK`` (NCCL) or the
    CPU (gloo). Without torchrun this is a single process.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={device!r} but CUDA is not available here; use device=cpu")
        dev = torch.device("cuda", local if world > 1 else (torch.device(device).index or 0))
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Runtime(device=dev, rank=rank, world_size=world, local_rank=local)


def teardown(rt: Runtime) -> None:
    if rt.distributed and dist.is_initialized():
        dist.destroy_process_group()


def set_determinism(enabled: bool) -> None:
    """Deterministic kernels (and no cuDNN autotuning) when ``enabled``; fast autotuned kernels otherwise."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.benchmark = not enabled
    torch.backends.cudnn.deterministic = enabled


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of one epoch on one process: every epoch's randomness depends only on (seed, epoch, rank),
    which is what makes a resumed run identical to an uninterrupted one."""
    return (seed * 1_000_003 + epoch * 9_973 + rank * 101) % (2**63 - 1)


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)  # seeds CPU and every CUDA device


def autocast(rt: Runtime, amp: str):
    """The autocast context for ``amp`` in {"off", "bf16", "fp16"} (CUDA only for the latter two)."""
    if amp == "off":
        return contextlib.nullcontext()
    if rt.device.type != "cuda":
        raise RuntimeError(f"amp={amp} needs a CUDA device; this run is on {rt.device}. Set amp=off.")
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def peak_memory_mb(rt: Runtime) -> float:
    """Peak memory of this process so far: CUDA allocator peak on GPU, max resident set size on CPU."""
    if rt.device.type == "cuda":
        return torch.cuda.max_memory_allocated(rt.device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def all_reduce_sum(t: torch.Tensor, rt: Runtime) -> torch.Tensor:
    if rt.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_min(t: torch.Tensor, rt: Runtime) -> torch.Tensor:
    if rt.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return t
