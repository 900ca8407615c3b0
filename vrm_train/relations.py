"""The VRM maths: affinity graphs, REP/UEP pruning and the relation-matching loss (torch only).

VRM = Virtual Relation Matching (Zhang et al., arXiv 2502.20760); canonical definition: shared/spec/VRM.md.
``out = vrm_loss(s, s_v, t, t_v, is_edges="cross_view", zscore=True, uep="cross_entropy", uep_ratio=0.25,
huber_delta=1.0, lambda_is=1.0, lambda_ic=1.0); (ce + out.loss).backward()``.
Dense graphs and per-edge maps for display (same edge core): :mod:`vrm_train.relations_display`.

Notation. One model's logits: real view z [B, C], virtual view z̃ [B, C] (z-scored first when asked).
IS vertices, in order: [z_0..z_{B-1}; z̃_0..z̃_{B-1}] (2B rows of dimension C; real_only: the B real rows).
IC vertices: the C columns of [z; z̃] (2B×C), each of dimension 2B (real_only: columns of z, dimension B).
Edge u→v: E_uv = unit(x_u − x_v), unit(a) = a / max(‖a‖₂, 1e-12) (= torch.nn.functional.normalize).
Edge loss: ℓ_uv = Σ_k smooth_l1(E^S_uv,k − E^T_uv,k; β=δ), smooth_l1(x) = 0.5x²/δ if |x|<δ else |x|−0.5δ.

Speed (exact, not approximate). Writing a = x_u − x_v (student) and b (teacher),
‖E^S − E^T‖² = q_S + q_T − 2⟨a, b⟩ / (max(‖a‖,ε) max(‖b‖,ε)), q = ‖a‖²/max(‖a‖,ε)², and ‖a‖², ⟨a, b⟩
expand into Gram matrices of the vertices (computed in float64). An edge whose elements are all provably
inside the quadratic part of smooth_l1 (‖d‖_∞ ≤ min(‖d‖₂, ‖E^S‖_∞ + ‖E^T‖_∞) < δ, the ∞-norms bounded by
per-vertex max/min) costs 0.5‖d‖²/δ from the Grams. Every other edge, and every edge whose squared norm
loses more than 4 digits to cancellation (‖a‖² < 1e-4 (‖x_u‖² + ‖x_v‖²), e.g. near-duplicate vertices),
is materialised directly, in float64 chunks of ≤ 2^19 elements per tensor (when there are several, each
is recomputed in backward: activation checkpointing), so memory stays O(B² + C² + chunk).

Undefined edges (spec §2.4). An edge has no direction when its two vertices (almost) coincide: edge uv is
undefined when, for the student or the teacher, ‖x_u − x_v‖² ≤ τ²(‖x_u‖² + ‖x_v‖²), τ = ``edge_tol``
(default 1e-5). Its difference vectors are zeroed before ``unit``, so it contributes zero loss and exactly
zero gradient on both sides (like a self-loop); it stays in the edge count of the mean. τ² ≤ 1e-6 is far
below the 1e-4 cancellation threshold, so every undefined edge is on the direct path, where the test is
computed from the materialised difference; the Gram path is unchanged (no near-duplicate: bit-identical).
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

__all__ = [
    "EDGE_TOL",
    "IS_EDGE_SETS",
    "SCORED_UEP",
    "UEP_RULES",
    "VRMOutput",
    "inter_view_gaps",
    "rep_candidates",
    "uep_mask",
    "uep_scores",
    "vrm_loss",
    "zscore",
]

IS_EDGE_SETS = ("cross_view", "all", "real_only")
UEP_RULES = ("cross_entropy", "joint_entropy", "teacher_student", "residual", "none")
SCORED_UEP = ("cross_entropy", "joint_entropy", "teacher_student")  # rules that rank edges by a score
EDGE_TOL = 1e-5  # τ of the undefined-edge rule (spec §2.4)
MAX_EDGE_TOL = 1e-3
_NORM_EPS = 1e-12  # torch.nn.functional.normalize's eps
_ZSCORE_EPS = 1e-6
_CANCEL = 1e-4  # ‖x_u − x_v‖² below this fraction of ‖x_u‖² + ‖x_v‖²: direct path
_CHUNK = 1 << 19  # elements per [edges, dim] float64 tensor on the direct path (4 MiB)
# Up to this many edge elements (edges × dim) every edge is materialised at once, with no host sync (no
# nonzero/item): on a GPU, small graphs are launch- and sync-bound, and 2^22 float64 elements are cheap.
# On the CPU the Gram path is faster at every size, so the limit is 0 there.
_DENSE_LIMIT = {"cuda": 1 << 22}
# Every undefined edge must reach the direct path, where the rule is decided on the materialised difference:
# τ² (‖x_u‖² + ‖x_v‖²) must lie far below the Gram path's cancellation threshold (float64 Grams lose ~1e-16).
assert MAX_EDGE_TOL**2 <= _CANCEL / 100, "edge_tol² must stay below the Gram path's cancellation threshold"


class VRMOutput(NamedTuple):
    """loss: 0-dim, λ_IS·L_IS + λ_IC·L_IC (no CE). terms: "is", "ic" (unweighted, differentiable unless
    their λ is 0 while the other is not) and detached diagnostics. masks: see :func:`vrm_loss`."""

    loss: Tensor
    terms: dict[str, Tensor]
    masks: dict[str, Tensor]


def _options(
    is_edges=None, uep=None, zscore=None, uep_ratio=None, huber_delta=None, lambdas=(), edge_tol=None
):
    for name, value, allowed in (("is_edges", is_edges, IS_EDGE_SETS), ("uep", uep, UEP_RULES)):
        if value is not None and value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    if zscore is not None and not isinstance(zscore, bool):
        raise ValueError(f"zscore must be a bool; got {zscore!r}")
    if uep_ratio is not None and not (isinstance(uep_ratio, int | float) and 0 <= uep_ratio < 1):
        raise ValueError(f"uep_ratio must be in [0, 1); got {uep_ratio!r}")
    if huber_delta is not None and not (isinstance(huber_delta, int | float) and 0 < huber_delta < math.inf):
        raise ValueError(f"huber_delta must be a finite number > 0; got {huber_delta!r}")
    if edge_tol is not None and not (isinstance(edge_tol, int | float) and 0 <= edge_tol <= MAX_EDGE_TOL):
        raise ValueError(f"edge_tol must be a number in [0, {MAX_EDGE_TOL:g}]; got {edge_tol!r}")
    for name, lam in lambdas:
        if not (isinstance(lam, int | float) and 0 <= lam < math.inf):
            raise ValueError(f"{name} must be a finite number >= 0; got {lam!r}")


def _inputs(named, *, virtual_needed: bool, why: str, finite: bool = True) -> None:
    """Validate logits: named = [(name, tensor-or-None)], first real then virtual; all [B, C]; finite unless
    ``finite`` is False (then no host sync: a non-finite input gives a non-finite result)."""
    ref_name, ref = named[0]
    for name, x in named:
        if x is None:
            if virtual_needed:
                raise ValueError(f"{name} is required for {why} (only is_edges='real_only' needs no views)")
            continue
        if not isinstance(x, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
        if x.dim() != 2:
            raise ValueError(f"{name} must be a 2-D tensor [B, C]; got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor; got {x.dtype}")
        if x.shape != ref.shape:
            raise ValueError(f"{name} has shape {tuple(x.shape)} but {ref_name} has shape {tuple(ref.shape)}")
        if x.device != ref.device:
            raise ValueError(f"{name} is on {x.device} but {ref_name} is on {ref.device}")
    b, c = ref.shape
    if b < 2:
        raise ValueError(f"need a batch of at least 2 samples (B >= 2); got B={b}")
    if c < 2:
        raise ValueError(f"need at least 2 classes (C >= 2); got C={c}")
    if not finite:
        return
    present = [(n, x) for n, x in named if x is not None]
    finite = torch.stack([torch.isfinite(x.detach()).all() for _, x in present]).tolist()
    for (name, _), ok in zip(present, finite, strict=True):
        if not ok:
            raise ValueError(f"{name} contains NaN or inf")


def zscore(z: Tensor) -> Tensor:
    """Per-sample standardisation over the last (class) dim: (z − mean) / (std(unbiased=False) + 1e-6)."""
    return (z - z.mean(-1, keepdim=True)) / (z.std(-1, unbiased=False, keepdim=True) + _ZSCORE_EPS)


zscore_rows = zscore  # the module-level name, for functions whose ``zscore`` keyword shadows it


def _unit(a: Tensor) -> Tensor:
    """a / max(‖a‖, ε) along the last dim; the squared norm is clamped before sqrt (finite gradient at 0)."""
    return a / a.pow(2).sum(-1, keepdim=True).clamp_min(_NORM_EPS**2).sqrt()


def _undefined(a: Tensor, b: Tensor, diff: Tensor, tol: float) -> Tensor:
    """Spec §2.4 for one model: ‖a − b‖² ≤ τ² (‖a‖² + ‖b‖²) along the last dim (diff = a − b, float64)."""
    return diff.pow(2).sum(-1) <= tol * tol * (a.pow(2).sum(-1) + b.pow(2).sum(-1))


def inter_view_gaps(z: Tensor, z_v: Tensor, *, zscore: bool) -> Tensor:
    """Relative inter-view gap of each image, ‖x_i − x̃_i‖ / √(‖x_i‖² + ‖x̃_i‖²) [B] (float64, no grad; x the
    z-scored rows when asked): the inter-view edge of image i is undefined for this model iff gap ≤ edge_tol.
    No validation and no host sync (called every training step)."""
    with torch.no_grad():
        x, x_v = (zscore_rows(a.detach()) if zscore else a.detach() for a in (z, z_v))
        x, x_v = x.double(), x_v.double()
        den = (x.pow(2).sum(-1) + x_v.pow(2).sum(-1)).clamp_min(torch.finfo(torch.float64).tiny)
        return ((x - x_v).pow(2).sum(-1) / den).sqrt()


def rep_candidates(is_edges: str, batch_size: int, *, device: torch.device | str | None = None) -> Tensor:
    """REP: bool mask of the IS edges of an edge set. cross_view: [B, B] all True (row m = real vertex m,
    column n = virtual vertex n, B² edges). all: [2B, 2B], True iff u < v. real_only: [B, B], u < v."""
    _options(is_edges=is_edges)
    if batch_size < 2:
        raise ValueError(f"need a batch of at least 2 samples (B >= 2); got B={batch_size}")
    if is_edges == "cross_view":
        return torch.ones(batch_size, batch_size, dtype=torch.bool, device=device)
    n = 2 * batch_size if is_edges == "all" else batch_size
    return torch.ones(n, n, dtype=torch.bool, device=device).triu(1)


def uep_scores(s: Tensor, s_v: Tensor | None, *, is_edges: str, uep: str, t=None, t_v=None) -> Tensor:
    """UEP reliability scores (float64, no grad) from softmax(raw logits), temperature 1.
    cross_entropy: J[u, v] = −Σ_c p_u(c) log p_v(c); joint_entropy: J[u, v] = H(p_u) + H(p_v) (student only);
    teacher_student: J[u, v] = KL(p^T_u ‖ p^S_u) + KL(p^T_v ‖ p^S_v) (needs the teacher's t, t_v).
    cross_view: [B, B], u = real m (p), v = virtual n (p̃). all: [2B, 2B] over [real; virtual]; real_only:
    [B, B]; for these two the edge (u, v), u < v, uses p_u first and p_v second (entries u ≥ v unused)."""
    _options(is_edges=is_edges, uep=uep)
    if uep not in SCORED_UEP:
        raise ValueError(f"uep_scores needs uep in {SCORED_UEP}; got {uep!r}")
    why = f"is_edges={is_edges!r}"
    named = [("s", s), ("s_v", s_v)] + ([("t", t), ("t_v", t_v)] if uep == "teacher_student" else [])
    if uep == "teacher_student" and t is None:
        raise ValueError("t is required for uep='teacher_student' (it compares teacher and student)")
    _inputs(named, virtual_needed=is_edges != "real_only", why=why)
    return _scores(s, s_v, is_edges, uep, t, t_v)


def _scores(s, s_v, is_edges, uep, t=None, t_v=None):
    with torch.no_grad():
        views = [None if x is None else x.detach().double() for x in (s, s_v, t, t_v)]
        lp = [None if x is None else x.log_softmax(-1) for x in views]
        if uep == "teacher_student":  # per vertex: KL(p^T ‖ p^S) = Σ p^T (log p^T − log p^S)
            kl = [None if lp[i] is None else (lp[i + 2].exp() * (lp[i + 2] - lp[i])).sum(-1) for i in (0, 1)]
            first = torch.cat(kl) if is_edges == "all" else kl[0]
            return _outer(first, kl[1] if is_edges == "cross_view" else first)
        lp1 = torch.cat(lp[:2]) if is_edges == "all" else lp[0]
        lp2 = lp[1] if is_edges == "cross_view" else lp1
        if uep == "cross_entropy":
            return -(lp1.exp() @ lp2.T)
        h1, h2 = -(lp1.exp() * lp1).sum(-1), -(lp2.exp() * lp2).sum(-1)
        return h1[:, None] + h2[None, :]


def uep_mask(scores: Tensor, candidates: Tensor, *, uep_ratio: float) -> Tensor:
    """Kept-edge mask: the candidates minus the k = math.floor(uep_ratio · n) candidates with the largest
    scores (n = number of candidates). Ties: candidates are ranked by score, descending, with a stable sort
    over row-major (u, v) order, so among equal scores the edge with the smaller (u, v) is pruned first."""
    _options(uep_ratio=uep_ratio)
    if scores.shape != candidates.shape or candidates.dtype != torch.bool:
        raise ValueError("scores and candidates must have the same shape and candidates must be bool")
    return _prune_top(scores, candidates, math.floor(uep_ratio * int(candidates.sum())))


def _prune_top(scores: Tensor, candidates: Tensor, k: int) -> Tensor:
    """``candidates`` minus its k highest-scoring entries (stable, row-major ties); no host sync."""
    flat = scores.detach().reshape(-1).masked_fill(~candidates.reshape(-1), -math.inf)
    order = torch.sort(flat, descending=True, stable=True).indices[:k]
    kept = candidates.clone()
    kept.view(-1)[order] = False
    return kept


def _num_candidates(is_edges: str, b: int) -> int:
    n = 2 * b if is_edges == "all" else b
    return b * b if is_edges == "cross_view" else n * (n - 1) // 2


def _direct(a_s, b_s, a_t, b_t, i, j, delta, residual, tol):
    """Materialised edges a_i − b_j (float64): (loss, dropped-element count, undefined), or (cosine,
    undefined) if delta None. An undefined edge (spec §2.4) is zeroed before unit: value 0, gradient 0."""
    ends = [(a_s[i], b_s[j]), (a_t[i], b_t[j])]
    diffs = [u - v for u, v in ends]
    with torch.no_grad():
        undef = _undefined(*ends[0], diffs[0].detach(), tol) | _undefined(*ends[1], diffs[1].detach(), tol)
    e_s, e_t = (_unit(d.masked_fill(undef[:, None], 0)) for d in diffs)
    if delta is None:
        return (e_s * e_t).sum(-1), undef
    elem = F.smooth_l1_loss(e_s, e_t, reduction="none", beta=delta)
    if not residual:
        return elem.sum(-1), torch.zeros_like(i), undef
    keep = (e_s - e_t).detach().abs() <= delta
    return (elem * keep).sum(-1), (~keep).sum(-1), undef


class _Edges(NamedTuple):  # all [nA, nB]
    value: Tensor  # float64 per-edge loss (0 off the active set) or cosine (NaN off it)
    dropped: Tensor  # int64 dropped-element counts
    direct: Tensor  # bool: active edges computed on the direct path
    undefined: Tensor  # bool: active edges found undefined (spec §2.4), valued 0 with zero gradient


def _outer(x: Tensor, y: Tensor) -> Tensor:
    return x[:, None] + y[None, :]


def _spread(a: Tensor, b: Tensor) -> Tensor:
    """[nA, nB] upper bound of max_k |a_ik − b_jk| from per-row max and min."""
    return torch.maximum(_outer(a.amax(-1), -b.amin(-1)), _outer(-a.amin(-1), b.amax(-1)))


def _edges(a_s, b_s, a_t, b_t, active, delta, tol, residual=False, same=False) -> _Edges:
    """Edges a_i − b_j of student (a_s, b_s) and teacher (a_t, b_t) for the active (i, j); see module doc.
    same: b is a (symmetric sets), which saves two matmuls. delta None: cosines instead of losses."""
    a_s, b_s = a_s.double(), b_s.double()
    a_t, b_t = a_t.detach().double(), b_t.detach().double()
    if active.numel() * a_s.shape[1] <= _DENSE_LIMIT.get(a_s.device.type, 0):
        return _dense_edges(a_s, b_s, a_t, b_t, active, delta, residual, tol)
    sum_s = _outer(a_s.pow(2).sum(-1), b_s.pow(2).sum(-1))  # ‖x_i‖² + ‖x_j‖²
    sum_t = _outer(a_t.pow(2).sum(-1), b_t.pow(2).sum(-1))
    n2_s = (sum_s - 2 * (a_s @ b_s.T)).clamp_min(0)  # ‖a_i − b_j‖²
    with torch.no_grad():
        n2_t = (sum_t - 2 * (a_t @ b_t.T)).clamp_min(0)
    m1 = a_s @ b_t.T
    dot = _outer((a_s * a_t).sum(-1), (b_s * b_t).sum(-1)) - m1 - (m1.T if same else a_t @ b_s.T)
    den_s, den_t = n2_s.clamp_min(_NORM_EPS**2), n2_t.clamp_min(_NORM_EPS**2)
    cos = dot / (den_s * den_t).sqrt()
    d2 = (n2_s / den_s + n2_t / den_t - 2 * cos).clamp_min(0)  # ‖E^S − E^T‖²
    with torch.no_grad():
        fast = (n2_s >= _CANCEL * sum_s) & (n2_t >= _CANCEL * sum_t)
        if delta is not None:  # ‖d‖_∞ ≤ min(‖d‖₂, ‖E^S‖_∞ + ‖E^T‖_∞), ‖E‖_∞ ≤ spread of the two rows / ‖a‖
            bound = d2.sqrt()
            if delta < 2:  # (for δ ≥ 2, ‖d‖₂ ≤ 2 certifies every edge, up to rounding)
                sup = [_spread(a, b) / den.sqrt() for a, b, den in ((a_s, b_s, den_s), (a_t, b_t, den_t))]
                bound = torch.minimum(bound, sup[0] + sup[1])
            fast &= bound < delta * (1 - 1e-9)
        slow = active & ~fast
        i, j = slow.nonzero(as_tuple=True)
    on = active & fast
    value = torch.where(on, cos, math.nan) if delta is None else torch.where(on, 0.5 * d2 / delta, 0.0)
    dropped = torch.zeros(active.shape, dtype=torch.int64, device=active.device)
    undefined = torch.zeros(active.shape, dtype=torch.bool, device=active.device)
    if i.numel():
        step = max(1, _CHUNK // a_s.shape[1])
        # several chunks: recompute each in backward, so that saved activations stay one chunk's worth
        many = torch.is_grad_enabled() and (a_s.requires_grad or b_s.requires_grad) and i.numel() > step
        run = partial(checkpoint, _direct, use_reentrant=False, preserve_rng_state=False) if many else _direct
        chunks = [(i[k : k + step], j[k : k + step]) for k in range(0, i.numel(), step)]
        parts = [run(a_s, b_s, a_t, b_t, ii, jj, delta, residual, tol) for ii, jj in chunks]
        outs = [torch.cat(p) for p in zip(*parts, strict=True)]
        value = value.index_put((i, j), outs[0])
        undefined = undefined.index_put((i, j), outs[-1])
        if delta is not None:
            dropped = dropped.index_put((i, j), outs[1])
    return _Edges(value, dropped, slow, undefined)


def _dense_edges(a_s, b_s, a_t, b_t, active, delta, residual, tol) -> _Edges:
    """Every (i, j) materialised at once (small graphs on a GPU: no host sync); same values as _edges."""
    n_a, n_b = active.shape
    i = torch.arange(n_a, device=active.device).repeat_interleave(n_b)
    j = torch.arange(n_b, device=active.device).repeat(n_a)
    out = [o.view(n_a, n_b) for o in _direct(a_s, b_s, a_t, b_t, i, j, delta, residual, tol)]
    undefined = active & out[-1]
    if delta is None:
        zeros = torch.zeros_like(out[0], dtype=torch.int64)
        return _Edges(torch.where(active, out[0], math.nan), zeros, active, undefined)
    value = torch.where(active, out[0], 0.0)
    return _Edges(value, torch.where(active, out[1], 0), active, undefined)


def _prepare(s, s_v, t, t_v, is_edges, standardise, finite=True):
    """Validate; detach the teacher; drop the views for real_only; z-score. Returns [s, s_v, t, t_v]."""
    why = f"is_edges={is_edges!r}"
    named = [("s", s), ("s_v", s_v), ("t", t), ("t_v", t_v)]
    _inputs(named, virtual_needed=is_edges != "real_only", why=why, finite=finite)
    if is_edges == "real_only" or s_v is None or t_v is None:
        s_v = t_v = None
    xs = (s, s_v, t.detach(), None if t_v is None else t_v.detach())
    return [None if x is None else (zscore(x) if standardise else x) for x in xs]


def _is_sides(z, is_edges):
    """IS edge problem (a_s, b_s, a_t, b_t, same): edge (i, j) = a_i − b_j."""
    if is_edges == "cross_view":
        return z[0], z[1], z[2], z[3], False
    x_s, x_t = (z[0], z[2]) if z[1] is None else (torch.cat(z[:2]), torch.cat(z[2:]))
    return x_s, x_s, x_t, x_t, True


def _ic_sides(z):
    """IC edge problem (w_s, w_s, w_t, w_t, candidates c < d): vertices = columns of [z; z̃] (or z)."""
    w_s, w_t = ((z[i] if z[i + 1] is None else torch.cat(z[i : i + 2])).T for i in (0, 2))
    n = w_s.shape[0]
    return w_s, w_s, w_t, w_t, torch.ones(n, n, dtype=torch.bool, device=w_s.device).triu(1)


def vrm_loss(
    s: Tensor,
    s_v: Tensor | None,
    t: Tensor,
    t_v: Tensor | None,
    *,
    is_edges: str,
    zscore: bool,
    uep: str,
    uep_ratio: float,
    huber_delta: float,
    lambda_is: float,
    lambda_ic: float,
    edge_tol: float = EDGE_TOL,
    check_finite: bool = True,
) -> VRMOutput:
    """VRM relation-matching loss L = λ_IS·L_IS + λ_IC·L_IC (cross-entropy not included).

    s, s_v: student logits of the real and virtual views [B, C]; t, t_v: teacher logits [B, C], detached here.
    is_edges (REP): "cross_view": edges real m → virtual n, E_mn = unit(z_m − z̃_n), B² edges (diagonal =
    inter-view edges); "all": the 2B(2B−1)/2 pairs u < v of [real; virtual]; "real_only": the B(B−1)/2 pairs
    u < v of real vertices, and the IC graph uses the real batch only (s_v, t_v unused, may be None).
    zscore: standardise each row of s, s_v, t, t_v first (see :func:`zscore`); UEP scores never use it.
    uep (IS graph only): "cross_entropy" / "joint_entropy" / "teacher_student": scores from
    :func:`uep_scores` (raw logits), then exactly floor(uep_ratio · n_IS) candidate edges with the largest
    scores are pruned (:func:`uep_mask`: ties → smaller (u, v) in row-major order pruned first); masks under
    no_grad, pruned edges neither add to the loss nor get gradient. "residual": element k of IS edge uv is
    dropped when |E^S_uv,k − E^T_uv,k| > huber_delta (decided under no_grad); ℓ_uv sums smooth_l1 over the
    kept elements (all quadratic: 0.5 d²/δ) and L_IS averages over all n_IS edges. "none": no pruning.
    uep_ratio ∈ [0, 1), unused by "residual" and "none".
    edge_tol: τ of the undefined-edge rule (spec §2.4; see the module doc): an undefined IS or IC edge adds 0
    to the loss and gets exactly zero gradient, but still counts in the mean.
    check_finite: raise ValueError on NaN/inf inputs (one host sync); False (the trainer): a non-finite
    input gives a non-finite loss, which the training loop reports.
    L_IS = Σ_{kept uv} ℓ_uv / max(n_kept, 1) (n_IS for "residual"); L_IC = Σ_{c<d} ℓ_cd / (C(C−1)/2) over the
    class graph F_cd = unit(w_c − w_d), w_c = column c of [z; z̃] (2B-dim; real_only: B-dim).
    A term whose λ is 0 while the other λ is not is computed without autograd graph (speed).
    Returns VRMOutput(loss, terms, masks), loss and terms in s.dtype.
    terms: "is", "ic" (unweighted L_IS, L_IC), detached diagnostics "is_kept_frac" (kept / n_IS),
    "is_dropped_element_frac" (residual: dropped elements / (n_IS·C), else 0), "is_direct_frac",
    "ic_direct_frac" (share of edges computed on the materialised path), "undefined_edges" (number of kept
    IS edges plus IC edges that are undefined), and with virtual views "gap_min_s", "gap_min_t" (the
    smallest relative inter-view gap of the batch, :func:`inter_view_gaps`, student and teacher).
    masks: "is" bool, True = edge kept (residual: no element dropped); "is_candidates" bool, the edge set
    (:func:`rep_candidates`); "is_dropped_elements" int64 per edge; "is_undefined" bool, kept edges that
    are undefined. Shape [B, B] for cross_view (row m = real m, column n = virtual n) and real_only (u < v
    only), [2B, 2B] for all (order [real; virtual], u < v only). "ic": bool [C, C], True for c < d (every
    class edge is kept); "ic_undefined": bool [C, C], the undefined class edges.
    """
    lambdas = (("lambda_is", lambda_is), ("lambda_ic", lambda_ic))
    _options(is_edges, uep, zscore, uep_ratio, huber_delta, lambdas, edge_tol)
    z = _prepare(s, s_v, t, t_v, is_edges, zscore, finite=check_finite)
    a_s, b_s, a_t, b_t, same = _is_sides(z, is_edges)
    cand = rep_candidates(is_edges, s.shape[0], device=s.device)
    c, delta, residual, tol = s.shape[1], float(huber_delta), uep == "residual", float(edge_tol)
    keep = cand
    if uep in SCORED_UEP:
        k = math.floor(uep_ratio * _num_candidates(is_edges, s.shape[0]))
        keep = _prune_top(_scores(s, s_v, is_edges, uep, t, t_v), cand, k)
    n_is, n_ic = cand.sum().double(), c * (c - 1) // 2
    with torch.set_grad_enabled(torch.is_grad_enabled() and (lambda_is != 0 or lambda_ic == 0)):
        e_is = _edges(a_s, b_s, a_t, b_t, keep, delta, tol, residual, same)
        l_is = e_is.value.sum() / (n_is if residual else keep.sum().clamp_min(1))
    if residual:
        keep = cand & (e_is.dropped == 0)
    with torch.set_grad_enabled(torch.is_grad_enabled() and (lambda_ic != 0 or lambda_is == 0)):
        *ic_sides, ic_cand = _ic_sides(z)
        e_ic = _edges(*ic_sides, ic_cand, delta, tol, same=True)
        l_ic = e_ic.value.sum() / n_ic
    loss = (lambda_is * l_is + lambda_ic * l_ic).to(s.dtype)
    terms = {"is": l_is.to(s.dtype), "ic": l_ic.to(s.dtype)}
    diag = dict(is_kept_frac=keep.sum() / n_is, is_dropped_element_frac=e_is.dropped.sum() / (n_is * c))
    diag.update(is_direct_frac=e_is.direct.sum() / n_is, ic_direct_frac=e_ic.direct.sum().double() / n_ic)
    diag["undefined_edges"] = (e_is.undefined.sum() + e_ic.undefined.sum()).double()
    if z[1] is not None:
        for name, (x, x_v) in (("gap_min_s", z[:2]), ("gap_min_t", z[2:])):
            diag[name] = inter_view_gaps(x, x_v, zscore=False).min()
    terms.update({k: v.detach().to(s.dtype) for k, v in diag.items()})
    masks = {"is": keep, "is_candidates": cand, "is_dropped_elements": e_is.dropped, "ic": ic_cand}
    masks.update(is_undefined=e_is.undefined, ic_undefined=e_ic.undefined)
    return VRMOutput(loss, terms, masks)
