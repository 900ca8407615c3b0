"""The "spurious responses" pilot study of the VRM paper (shared/spec/VRM.md §6), made measurable.

One sample's teacher prediction is corrupted; we compare, for each distillation loss, the gradient every
sample's student logits receive with the clean teacher and with the corrupted one. A per-sample loss (KD)
confines the change to the corrupted sample; relation losses (RKD, DIST, VRM) pass it on to the others.
VRM's unreliable-edge pruning (UEP) can cut it off only when it prunes the corrupted sample's edges: the
student-only scores (cross_entropy, joint_entropy) cannot see a wrong teacher, teacher_student can.
:func:`uep_verdict` says in words whether UEP helped for the numbers at hand; :data:`UEP_HELPS_PRESET` is a
setting where it does on the demo run (a test keeps the claim true).

    fns = loss_functions(run.config, uep_ratio=0.3, uep="teacher_student")
    df = spurious_gradients(s, s_v, t, t_v, sample=2, wrong_class=7, strength=1.0, losses=fns)
    summary = leak_summary(df)   # per loss: change at the corrupted sample, mean change elsewhere, their ratio
    uep_verdict(summary, uep="teacher_student", uep_ratio=0.3)["text"]

Gradients are taken with autograd in float64 w.r.t. the student logits (both views for VRM, which uses
them; KD, RKD and DIST see the real view only, as they do in training). RKD is applied to the logits, not
to features: the corruption is a change of the teacher's logits, so every loss here sees the same inputs.
Each loss carries its weight in the training objective (kd_weight, rkd weight; λ's inside VRM); the
cross-entropy term is left out (it does not involve the teacher). Every formula is the trainer's own
(:mod:`vrm_train.losses`, :mod:`vrm_train.relations`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import pandas as pd
import torch
from torch import Tensor

from vrm_train.config import DISTConfig, KDConfig, RKDConfig, VRMConfig
from vrm_train.losses import dist_loss, kd_loss, rkd_loss
from vrm_train.relations import UEP_RULES, rep_candidates, uep_mask, uep_scores, vrm_loss

__all__ = [
    "LOSS_LABELS",
    "SCORED_RULES",
    "UEP_HELPS_PRESET",
    "corrupt_teacher",
    "experiment",
    "leak_summary",
    "logit_gradients",
    "loss_functions",
    "spurious_gradients",
    "uep_pruned_edges",
    "uep_verdict",
    "vrm_options",
]

LossFn = Callable[[Tensor, Tensor | None, Tensor, Tensor | None], Tensor]

# The Learn VRM page's "case where UEP helps": the teacher–student score at this ratio, on the demo's VRM run
# (the probe batch of the last epoch, its first 16 samples, sample 0 corrupted towards its least likely
# class). On the page's default batch (training batch 0 of epoch 1, an untrained student) no rule helps.
UEP_HELPS_PRESET = {"uep": "teacher_student", "uep_ratio": 0.4, "sample": 3, "strength": 1.0, "size": 16}
# the UEP rules that rank edges by a score, as far as this checkout's relations offer them
SCORED_RULES = tuple(r for r in ("cross_entropy", "joint_entropy", "teacher_student") if r in UEP_RULES)

LOSS_LABELS = {
    "kd": "KD (per sample)",
    "rkd": "RKD on logits",
    "dist": "DIST",
    "vrm_no_pruning": "VRM without UEP",
    "vrm": "VRM with UEP",
}


def corrupt_teacher(t: Tensor, sample: int, *, wrong_class: int, strength: float) -> Tensor:
    """A copy of teacher logits ``t`` [B, C] whose row ``sample`` now points at ``wrong_class``.

    The row's top logit and its ``wrong_class`` logit are swapped, and the result is blended with the
    original: t'_k = (1 − strength)·t_k + strength·swap(t_k). At strength 1 the teacher predicts the wrong
    class with exactly the confidence it had in its own answer; at 0 nothing changes. Other rows are kept.
    """
    b, c = t.shape
    if not 0 <= sample < b:
        raise ValueError(f"sample must be in [0, {b - 1}]; got {sample}")
    if not 0 <= wrong_class < c:
        raise ValueError(f"wrong_class must be in [0, {c - 1}]; got {wrong_class}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1]; got {strength}")
    out = t.detach().clone()
    row = out[sample].clone()
    top = int(row.argmax())
    swapped = row.clone()
    swapped[top], swapped[wrong_class] = row[wrong_class], row[top]
    out[sample] = (1.0 - strength) * row + strength * swapped
    return out


def _section(config: dict | None, name: str, cls) -> dict:
    values = asdict(cls())
    given = (config or {}).get(name)
    if isinstance(given, dict):
        values.update({k: v for k, v in given.items() if k in values})
    return values


def vrm_options(config: dict | None = None) -> dict:
    """The run's vrm section over the typed config's defaults, with ``uep`` replaced by cross_entropy
    when the run's rule prunes no fixed ratio of edges ("none", "residual")."""
    vrm = _section(config, "vrm", VRMConfig)
    if vrm["uep"] not in SCORED_RULES:
        vrm["uep"] = "cross_entropy"
    return vrm


def loss_functions(
    config: dict | None = None, *, uep_ratio: float | None = None, uep: str | None = None
) -> dict[str, LossFn]:
    """The losses compared, keyed as :data:`LOSS_LABELS`, with the hyper-parameters of a run's config
    (its kd/rkd/dist/vrm sections; the typed config's defaults where absent). "vrm" prunes with ``uep``
    (default: the run's UEP rule; cross_entropy when the run used none or "residual") at ``uep_ratio``
    (default: the run's ratio); "vrm_no_pruning" is the same loss with uep="none"."""
    kd, rkd, dist = (
        _section(config, n, c) for n, c in (("kd", KDConfig), ("rkd", RKDConfig), ("dist", DISTConfig))
    )
    vrm = vrm_options(config)
    rule = vrm["uep"] if uep is None else uep
    if rule not in SCORED_RULES:
        raise ValueError(f"uep must be one of {', '.join(SCORED_RULES)}; got {rule!r}")
    ratio = float(vrm["uep_ratio"] if uep_ratio is None else uep_ratio)
    common = {k: vrm[k] for k in ("is_edges", "zscore", "huber_delta", "lambda_is", "lambda_ic")}

    def vrm_fn(uep: str, r: float) -> LossFn:
        return lambda s, s_v, t, t_v: vrm_loss(s, s_v, t, t_v, uep=uep, uep_ratio=r, **common).loss

    return {
        "kd": lambda s, s_v, t, t_v: kd["kd_weight"] * kd_loss(s, t, temperature=kd["temperature"]),
        "rkd": lambda s, s_v, t, t_v: (
            rkd["weight"]
            * rkd_loss(
                s,
                t,
                distance_weight=rkd["distance_weight"],
                angle_weight=rkd["angle_weight"],
                squared=rkd["squared"],
                eps=rkd["eps"],
            )
        ),
        "dist": lambda s, s_v, t, t_v: dist_loss(
            s, t, beta=dist["beta"], gamma=dist["gamma"], tau=dist["tau"]
        ),
        "vrm_no_pruning": vrm_fn("none", 0.0),
        "vrm": vrm_fn(rule, ratio),
    }


def logit_gradients(fn: LossFn, s: Tensor, s_v: Tensor | None, t: Tensor, t_v: Tensor | None) -> Tensor:
    """∂ fn / ∂ [s, s_v] in float64: [B, 2C] (the s_v half is 0 when the loss does not use it)."""
    leaves = [x.detach().double().requires_grad_(True) for x in (s, s_v if s_v is not None else s)]
    t, t_v = t.detach().double(), None if t_v is None else t_v.detach().double()
    loss = fn(leaves[0], leaves[1] if s_v is not None else None, t, t_v)
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return torch.cat([torch.zeros_like(x) if g is None else g for x, g in zip(leaves, grads, strict=True)], 1)


def spurious_gradients(
    s: Tensor,
    s_v: Tensor | None,
    t: Tensor,
    t_v: Tensor | None,
    *,
    sample: int,
    wrong_class: int,
    strength: float,
    losses: dict[str, LossFn],
) -> pd.DataFrame:
    """One row per (loss, sample): grad_clean = ‖∂L/∂s_i‖ with the clean teacher, grad_corrupted the same
    with sample ``sample``'s teacher logits corrupted (both views; :func:`corrupt_teacher`), change =
    ‖∂L'/∂s_i − ∂L/∂s_i‖ (the gradient the corruption adds or removes), relative_change = change divided by
    the change at the corrupted sample (NaN when that is 0). Norms over both views' logits."""
    t_bad = corrupt_teacher(t, sample, wrong_class=wrong_class, strength=strength)
    t_v_bad = (
        None if t_v is None else corrupt_teacher(t_v, sample, wrong_class=wrong_class, strength=strength)
    )
    frames = []
    for name, fn in losses.items():
        g0 = logit_gradients(fn, s, s_v, t, t_v)
        g1 = logit_gradients(fn, s, s_v, t_bad, t_v_bad)
        change = (g1 - g0).norm(dim=1)
        ref = float(change[sample])
        frames.append(
            pd.DataFrame(
                {
                    "loss": name,
                    "label": LOSS_LABELS.get(name, name),
                    "sample": range(s.shape[0]),
                    "corrupted": [i == sample for i in range(s.shape[0])],
                    "grad_clean": g0.norm(dim=1).numpy(),
                    "grad_corrupted": g1.norm(dim=1).numpy(),
                    "change": change.numpy(),
                    "relative_change": (change / ref).numpy() if ref > 0 else float("nan"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def leak_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per loss: change at the corrupted sample, mean and max change at the other samples,
    leak = mean change at the others / change at the corrupted sample (0: the corruption stays put; NaN
    when the corrupted sample's own gradient did not change, e.g. UEP pruned all its edges) and
    disturbance = mean change at the others / mean clean gradient norm of the others."""
    rows = []
    for name, g in df.groupby("loss", sort=False):
        own = float(g.loc[g.corrupted, "change"].iloc[0])
        others = g.loc[~g.corrupted]
        mean = float(others["change"].mean())
        clean = float(others["grad_clean"].mean())
        rows.append(
            {
                "loss": name,
                "label": g["label"].iloc[0],
                "change_corrupted": own,
                "mean_change_others": mean,
                "max_change_others": float(others["change"].max()),
                "leak": mean / own if own > 0 else float("nan"),
                "disturbance": mean / clean if clean > 0 else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def uep_pruned_edges(
    s: Tensor,
    s_v: Tensor | None,
    sample: int,
    *,
    is_edges: str,
    uep: str,
    uep_ratio: float,
    t: Tensor | None = None,
    t_v: Tensor | None = None,
) -> tuple[int, int]:
    """(pruned, total): how many of the IS edges touching ``sample`` (its real or virtual vertex) UEP
    prunes at ``uep_ratio``, from :func:`~vrm_train.relations.uep_scores` and ``uep_mask``. The
    teacher_student rule needs the teacher's logits ``t``, ``t_v`` (pass the corrupted ones: what training
    would see)."""
    b = s.shape[0]
    cand = rep_candidates(is_edges, b)
    extra = {"t": t, "t_v": t_v} if uep == "teacher_student" else {}
    keep = uep_mask(uep_scores(s, s_v, is_edges=is_edges, uep=uep, **extra), cand, uep_ratio=uep_ratio)
    vertices = [sample, sample + b] if is_edges == "all" else [sample]
    touch = torch.zeros_like(cand)
    for v in vertices:
        touch[v, :] = True
        touch[:, v] = True
    touch &= cand
    return int((touch & ~keep).sum()), int(touch.sum())


def uep_verdict(summary: pd.DataFrame, *, uep: str, uep_ratio: float) -> dict:
    """Did UEP protect the other samples? From :func:`leak_summary`'s rows "vrm" (with UEP) and
    "vrm_no_pruning": the mean change of the other samples' gradients with and without pruning.

    Returns ``{"helps": bool, "with": float, "without": float, "text": str}``; ``helps`` is True when the
    other samples' gradients change less with UEP than without (the text says it in plain words, with the
    numbers). The mean change at the others is the measure, not ``leak``: when UEP prunes the corrupted
    sample's own edges, the denominator of ``leak`` shrinks too, so a smaller disturbance can read as a
    larger leak."""
    rows = summary.set_index("loss")
    with_, without = (
        float(rows.loc["vrm", "mean_change_others"]),
        float(rows.loc["vrm_no_pruning", "mean_change_others"]),
    )
    helps = with_ < without
    rel = (with_ - without) / without if without > 0 else float("nan")
    sees = (
        "it compares the student with the teacher, so a confidently wrong teacher response scores high"
        if uep == "teacher_student"
        else "it scores edges from the student's predictions alone, so it cannot see that the teacher is wrong"
    )
    if helps:
        text = (
            f"UEP helps here: with the {uep} rule at ratio {uep_ratio:.2f} the corruption changes the other "
            f"samples' gradients by {with_:.4g} on average, against {without:.4g} without pruning ({rel:+.0%}); "
            f"{sees}."
        )
    elif with_ == without:
        text = (
            f"UEP changes nothing here: with the {uep} rule at ratio {uep_ratio:.2f} the other samples' gradients "
            f"change by {with_:.4g} on average, exactly as without pruning."
        )
    else:
        text = (
            f"UEP does not help here: with the {uep} rule at ratio {uep_ratio:.2f} the corruption changes the "
            f"other samples' gradients by {with_:.4g} on average, more than the {without:.4g} without pruning "
            f"({rel:+.0%}): {sees}, and pruning other edges gives the kept ones, the corrupted sample's among them, more weight in the "
            "mean."
        )
    return {"helps": helps, "with": with_, "without": without, "text": text}


def experiment(
    s: Tensor,
    s_v: Tensor | None,
    t: Tensor,
    t_v: Tensor | None,
    config: dict | None,
    *,
    sample: int,
    wrong_class: int,
    strength: float,
    uep: str,
    uep_ratio: float,
) -> dict:
    """The Learn VRM experiment in one call: ``{"samples": per-sample table, "summary": leak_summary,
    "pruned": (pruned, total) IS edges of the corrupted sample under UEP (scored with the corrupted teacher,
    as in training), "verdict": uep_verdict}``."""
    fns = loss_functions(config, uep_ratio=uep_ratio, uep=uep)
    df = spurious_gradients(
        s, s_v, t, t_v, sample=sample, wrong_class=wrong_class, strength=strength, losses=fns
    )
    summary = leak_summary(df)
    bad = [
        None if x is None else corrupt_teacher(x, sample, wrong_class=wrong_class, strength=strength)
        for x in (t, t_v)
    ]
    is_edges = vrm_options(config)["is_edges"]
    pruned = uep_pruned_edges(
        s, s_v, sample, is_edges=is_edges, uep=uep, uep_ratio=uep_ratio, t=bad[0], t_v=bad[1]
    )
    return {
        "samples": df,
        "summary": summary,
        "pruned": pruned,
        "verdict": uep_verdict(summary, uep=uep, uep_ratio=uep_ratio),
    }
