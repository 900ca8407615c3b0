"""Where the GPU time goes: the relation core at B = 64, C = 100 and the engine's KD step.

    python -m bench.gpu_profile --device cuda        # on a GPU (about a minute)
    python -m bench.gpu_profile --device cpu --steps 3 --repeats 3     # the same code paths, tiny, on a CPU

1. Relation core (cross_view, z-score, cross-entropy UEP, float32 logits, forward + backward, median of
   ``--repeats`` after warm-up), each as a ratio to the materialising implementation of bench.relations:
   vrm_loss as shipped (on a GPU the dense path: every edge at once, no host sync), vrm_loss with the Gram
   path forced, ``torch.compile`` of the shipped call, and one CUDA graph replaying the shipped call's
   forward + backward on static inputs (CUDA only). The fastest variant is the one to keep.
2. The engine's KD step against a hand-written KD loop (the models and batches of bench.throughput):
   time per step of each, then the ``torch.profiler`` table of the ops with the largest self time for the
   engine step minus the hand loop, so the extra time has a name.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from bench.relations import make_inputs, naive_vrm_loss
from bench.throughput import make_trainer, sync, time_engine, time_hand_loop
from vrm_train import relations as R
from vrm_train.checkpoint import atomic_save
from vrm_train.models import create_model

OPTS = dict(
    is_edges="cross_view",
    zscore=True,
    uep="cross_entropy",
    uep_ratio=0.25,
    huber_delta=1.0,
    lambda_is=1.0,
    lambda_ic=1.0,
    check_finite=False,
)


def timed(step, device, repeats: int) -> float:
    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def relation_variants(device: torch.device, b: int, c: int) -> dict:
    s, s_v, t, t_v = (x.to(device) for x in make_inputs(b, c))
    s, s_v = s.requires_grad_(), s_v.requires_grad_()

    def shipped():
        R.vrm_loss(s, s_v, t, t_v, **OPTS).loss.backward()

    def gram():
        limit = R._DENSE_LIMIT.get(device.type, 0)
        R._DENSE_LIMIT[device.type] = 0
        try:
            shipped()
        finally:
            R._DENSE_LIMIT[device.type] = limit

    def naive():
        naive_vrm_loss(s, s_v, t, t_v, uep_ratio=0.25, huber_delta=1.0).backward()

    compiled_loss = torch.compile(lambda a, a_v: R.vrm_loss(a, a_v, t, t_v, **OPTS).loss)

    def compiled():
        compiled_loss(s, s_v).backward()

    out = {
        "materialising (bench.relations)": naive,
        "vrm_loss (shipped)": shipped,
        "vrm_loss, Gram path": gram,
    }
    out["vrm_loss, torch.compile"] = compiled
    if device.type == "cuda":
        out["vrm_loss, one CUDA graph (fwd + bwd)"] = cuda_graph(s, s_v, t, t_v)
    return out


def cuda_graph(s, s_v, t, t_v):
    """Capture the shipped call's forward and backward once; replaying it is one launch."""
    a, a_v = s.detach().clone().requires_grad_(), s_v.detach().clone().requires_grad_()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm-up on a side stream, as torch.cuda.graphs requires
            a.grad = a_v.grad = None
            R.vrm_loss(a, a_v, t, t_v, **OPTS).loss.backward()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    a.grad = a_v.grad = None
    with torch.cuda.graph(graph):
        R.vrm_loss(a, a_v, t, t_v, **OPTS).loss.backward()
    return graph.replay


def kd_profile(args, device: torch.device) -> None:
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    targs = argparse.Namespace(
        steps=args.steps, batch_size=64, student="resnet8x4", teacher="resnet32x4", device=str(device)
    )
    targs.amp, targs.channels_last = ("bf16", True) if device.type == "cuda" else ("off", False)
    with tempfile.TemporaryDirectory() as out:
        ckpt = f"{out}/teacher.pt"
        atomic_save({"model": create_model(targs.teacher, num_classes=100).state_dict()}, ckpt)
        kd = make_trainer(targs, "kd", ckpt, out)
        student = create_model(targs.student, num_classes=100).to(device)
        student.load_state_dict(kd.student.state_dict())
        if targs.channels_last:
            student = student.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        teacher = kd.distiller.teacher
        time_hand_loop(kd, student, teacher, opt), time_engine(kd, 1)  # warm-up
        hand = [time_hand_loop(kd, student, teacher, opt) for _ in range(args.repeats)]
        eng = [time_engine(kd, 2 + r) for r in range(args.repeats)]
        ratio = statistics.median(e / h for e, h in zip(eng, hand, strict=True))
        print(
            f"\nKD step: engine {statistics.median(eng) * 1e3:.2f} ms, hand loop {statistics.median(hand) * 1e3:.2f} ms"
        )
        print(f"engine / hand loop (paired median of {args.repeats}): {ratio:.3f} (goal ≤ 1.05)\n")
        tables = {}
        for name, fn in (
            ("hand", lambda: time_hand_loop(kd, student, teacher, opt)),
            ("engine", lambda: time_engine(kd, 99)),
        ):
            with profile(activities=acts) as prof:
                fn()
            key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
            tables[name] = {e.key: getattr(e, key) for e in prof.key_averages()}
            print(f"--- {name}: top ops by {key}")
            print(prof.key_averages().table(sort_by=key, row_limit=12))
        extra = {k: v - tables["hand"].get(k, 0.0) for k, v in tables["engine"].items()}
        print("--- engine minus hand loop (µs per epoch of steps), largest first")
        for k, v in sorted(extra.items(), key=lambda kv: -kv[1])[:15]:
            print(f"{v:12.0f}  {k}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20, help="training steps per KD timing")
    ap.add_argument("--skip-kd", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    variants = relation_variants(device, args.batch, args.classes)
    times = {}
    for name, step in variants.items():
        try:
            times[name] = timed(step, device, args.repeats)
        except Exception as e:  # torch.compile / CUDA graphs may not support a path: say so, keep going
            print(f"{name}: failed ({type(e).__name__}: {str(e).splitlines()[0][:160]})")
    base = times.get("materialising (bench.relations)")
    print(f"relation core, B={args.batch}, C={args.classes}, fwd+bwd, median of {args.repeats}, {device}:\n")
    print("| variant | ms | vs materialising |\n|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {t * 1e3:.2f} | {t / base:.2f} |" if base else f"| {name} | {t * 1e3:.2f} | |")
    if not args.skip_kd:
        kd_profile(args, device)


if __name__ == "__main__":
    main()
