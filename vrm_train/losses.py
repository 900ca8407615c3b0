"""Baseline distillation losses as pure functions (torch only).

Every function takes the student tensor(s) first and the teacher tensor(s) second, returns a 0-dim
tensor, and takes its hyper-parameters as keyword-only arguments without defaults (defaults live in
the typed config). The formulas and reductions match the peer implementations recorded in
``shared/reference/losses_A.pt``: mdistiller (kd, dkd, rkd, sp, pkt), image_classification_sota (dist)
and RepDistiller (cc, consecutive variant).

Gradient conventions: the teacher inputs are detached, so only the student receives gradient, in every
loss except :func:`cc_loss`, where both sides are differentiable (RepDistiller trains a teacher-side
embedding). Detach ``f_t`` yourself when the teacher side of CC is frozen.

Notation: ``B`` batch size, ``C`` classes, ``D`` feature size, ``softmax`` over the last dimension.
"""

import torch
import torch.nn.functional as F

__all__ = [
    "cc_loss",
    "dist_loss",
    "dkd_loss",
    "kd_loss",
    "pkt_loss",
    "rkd_loss",
    "sp_loss",
    "standardize_logits",
]

_DKD_MASK = 1000.0  # logit offset that removes the target class from the NCKD distributions
_DIST_EPS = 1e-8  # added to the denominator of the Pearson correlation, as in DIST


def _number(name: str, value, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a real number, got {type(value).__name__}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    if not positive and value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _logit_pair(fn: str, s: torch.Tensor, t: torch.Tensor) -> None:
    if s.dim() != 2 or t.dim() != 2:
        raise ValueError(f"{fn}: logits must be 2-D [B, C], got {tuple(s.shape)} and {tuple(t.shape)}")
    if s.shape != t.shape:
        raise ValueError(f"{fn}: student and teacher shapes differ: {tuple(s.shape)} vs {tuple(t.shape)}")


def _batch_pair(fn: str, f_s: torch.Tensor, f_t: torch.Tensor, *, exact_dim: int | None, min_batch: int):
    for side, f in (("f_s", f_s), ("f_t", f_t)):
        if (exact_dim is not None and f.dim() != exact_dim) or f.dim() < 2:
            want = f"{exact_dim}-D" if exact_dim is not None else "at least 2-D"
            raise ValueError(f"{fn}: {side} must be {want} with the batch first, got {tuple(f.shape)}")
    if f_s.shape[0] != f_t.shape[0]:
        raise ValueError(f"{fn}: batch sizes differ: {f_s.shape[0]} vs {f_t.shape[0]}")
    if f_s.shape[0] < min_batch:
        raise ValueError(f"{fn}: needs a batch of at least {min_batch}, got {f_s.shape[0]}")


_LS_EPS = 1e-7  # added to the standard deviation, as in the logit-standardisation code


def standardize_logits(z: torch.Tensor) -> torch.Tensor:
    """Sun et al. CVPR 2024, "Logit Standardization in Knowledge Distillation": z-score each row.

    ``(z − mean(z)) / (1e-7 + std(z))`` over the last dimension, with the unbiased (N − 1) standard
    deviation and the 1e-7 added to the std, as the paper's code. Nothing is detached: gradients flow
    through the mean and std. Apply it to student and teacher logits before dividing by the temperature
    (KD, DKD and DIST take it as the config switch ``logit_stand``).
    """
    return (z - z.mean(-1, keepdim=True)) / (_LS_EPS + z.std(-1, keepdim=True))


def kd_loss(s: torch.Tensor, t: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """Hinton et al. 2015, "Distilling the Knowledge in a Neural Network".

    ``s``, ``t``: logits [B, C]. With p = softmax(z / T)::

        L = T² · (1/B) Σ_i KL(p_t,i ‖ p_s,i) = T² · (1/B) Σ_i Σ_c p_t,ic (log p_t,ic − log p_s,ic)

    ("batchmean" reduction, as mdistiller's ``kd_loss``). Usage: ``kd_loss(z_s, z_t, temperature=4.0)``.
    """
    _logit_pair("kd_loss", s, t)
    _number("temperature", temperature, positive=True)
    log_p_s = F.log_softmax(s / temperature, dim=1)
    p_t = F.softmax(t.detach() / temperature, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="none").sum(1).mean() * temperature**2


def dkd_loss(
    s: torch.Tensor, t: torch.Tensor, target: torch.Tensor, *, alpha: float, beta: float, temperature: float
) -> torch.Tensor:
    """Zhao et al. CVPR 2022, "Decoupled Knowledge Distillation": ``alpha · TCKD + beta · NCKD``.

    ``s``, ``t``: logits [B, C]; ``target``: int64 labels [B] (values in [0, C) are not checked, to
    avoid a host sync). With p = softmax(z / T), g the target class and m = onehot(g)::

        b     = [p_g, Σ_{c≠g} p_c]                       (binary target / non-target distribution)
        TCKD  = T² · (1/B) Σ_i KL(b_t,i ‖ b_s,i)
        q     = softmax(z / T − 1000 · m)                (non-target distribution, target masked out)
        NCKD  = T² · (1/B) Σ_i KL(q_t,i ‖ q_s,i)

    The identity KL(p_t ‖ p_s) = KL(b_t ‖ b_s) + (1 − p_t,g) · KL(q_t ‖ q_s) holds per sample, so KD is
    DKD with ``alpha = 1`` and a per-sample ``beta = 1 − p_t,g``; ``alpha = beta = 1`` is not KD. As in
    mdistiller the mask is the finite offset 1000, which assumes |z / T| ranges well below 1000. No
    warm-up factor is applied here (the distiller multiplies by min(epoch / warmup, 1)).
    """
    _logit_pair("dkd_loss", s, t)
    if target.dim() != 1 or target.shape[0] != s.shape[0]:
        raise ValueError(f"dkd_loss: target must be 1-D [B={s.shape[0]}], got {tuple(target.shape)}")
    if target.dtype != torch.int64:
        raise ValueError(f"dkd_loss: target must be int64 class indices, got {target.dtype}")
    _number("alpha", alpha, positive=False)
    _number("beta", beta, positive=False)
    _number("temperature", temperature, positive=True)
    t = t.detach()
    gt = torch.zeros_like(s).scatter_(1, target.unsqueeze(1), 1.0)
    other = 1.0 - gt
    p_s = F.softmax(s / temperature, dim=1)
    p_t = F.softmax(t / temperature, dim=1)
    b_s = torch.cat([(p_s * gt).sum(1, keepdim=True), (p_s * other).sum(1, keepdim=True)], dim=1)
    b_t = torch.cat([(p_t * gt).sum(1, keepdim=True), (p_t * other).sum(1, keepdim=True)], dim=1)
    scale = temperature**2 / target.shape[0]
    tckd = F.kl_div(torch.log(b_s), b_t, reduction="sum") * scale
    log_q_s = F.log_softmax(s / temperature - _DKD_MASK * gt, dim=1)
    q_t = F.softmax(t / temperature - _DKD_MASK * gt, dim=1)
    nckd = F.kl_div(log_q_s, q_t, reduction="sum") * scale
    return alpha * tckd + beta * nckd


def _pearson_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + _DIST_EPS)


def dist_loss(s: torch.Tensor, t: torch.Tensor, *, beta: float, gamma: float, tau: float) -> torch.Tensor:
    """Huang et al. NeurIPS 2022, "Knowledge Distillation from A Stronger Teacher" (DIST).

    ``s``, ``t``: logits [B, C], B >= 2 and C >= 2. With y = softmax(z / τ) and
    ρ(a, b) = ⟨a − ā, b − b̄⟩ / (‖a − ā‖ ‖b − b̄‖ + 1e-8)::

        inter = τ² · (1 − (1/B) Σ_i ρ(y_s[i, :], y_t[i, :]))
        intra = τ² · (1 − (1/C) Σ_c ρ(y_s[:, c], y_t[:, c]))
        L     = beta · inter + gamma · intra

    Usage: ``dist_loss(z_s, z_t, beta=1.0, gamma=1.0, tau=4.0)``.
    """
    _logit_pair("dist_loss", s, t)
    if s.shape[0] < 2 or s.shape[1] < 2:
        raise ValueError(f"dist_loss: needs at least 2 rows and 2 classes, got {tuple(s.shape)}")
    _number("beta", beta, positive=False)
    _number("gamma", gamma, positive=False)
    _number("tau", tau, positive=True)
    y_s = F.softmax(s / tau, dim=1)
    y_t = F.softmax(t.detach() / tau, dim=1)
    inter = tau**2 * (1.0 - _pearson_rows(y_s, y_t).mean())
    intra = tau**2 * (1.0 - _pearson_rows(y_s.t(), y_t.t()).mean())
    return beta * inter + gamma * intra


def _pdist(e: torch.Tensor, *, squared: bool, eps: float) -> torch.Tensor:
    sq = e.pow(2).sum(1)
    d = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * e @ e.t()).clamp(min=eps)
    if not squared:
        d = d.sqrt()
    eye = torch.eye(e.shape[0], dtype=torch.bool, device=e.device)
    return d.masked_fill(eye, 0.0)


def _angles(e: torch.Tensor) -> torch.Tensor:
    v = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)  # v[i, j] = unit(e_j − e_i)
    return torch.bmm(v, v.transpose(1, 2)).reshape(-1)  # ⟨v_ij, v_ik⟩, B³ values


def rkd_loss(
    f_s: torch.Tensor,
    f_t: torch.Tensor,
    *,
    distance_weight: float,
    angle_weight: float,
    squared: bool,
    eps: float,
) -> torch.Tensor:
    """Park et al. CVPR 2019, "Relational Knowledge Distillation": distance + angle terms.

    ``f_s`` [B, ...], ``f_t`` [B, ...], flattened to [B, D_s] and [B, D_t] (D_s may differ from D_t);
    B >= 2. With e the rows::

        d_ij  = sqrt(max(‖e_i‖² + ‖e_j‖² − 2 e_i·e_j, eps)) for i ≠ j, d_ii = 0  (no sqrt if squared)
        ψ_D   = d / mean{d_ij : d_ij > 0}
        ψ_A   = ⟨unit(e_j − e_i), unit(e_k − e_i)⟩ for all (i, j, k)            (B³ values)
        L     = distance_weight · SmoothL1(ψ_D,s, ψ_D,t) + angle_weight · SmoothL1(ψ_A,s, ψ_A,t)

    Smooth-L1 with beta 1, averaged over all B² (diagonal included) and B³ entries, as mdistiller.
    The teacher side is computed without gradient.
    """
    _batch_pair("rkd_loss", f_s, f_t, exact_dim=None, min_batch=2)
    _number("distance_weight", distance_weight, positive=False)
    _number("angle_weight", angle_weight, positive=False)
    _number("eps", eps, positive=True)
    if not isinstance(squared, bool):
        raise ValueError(f"squared must be a bool, got {type(squared).__name__}")
    stu = f_s.reshape(f_s.shape[0], -1)
    with torch.no_grad():
        tea = f_t.reshape(f_t.shape[0], -1)
        d_t = _pdist(tea, squared=squared, eps=eps)
        d_t = d_t / (d_t.sum() / (d_t > 0).sum())
        a_t = _angles(tea)
    d_s = _pdist(stu, squared=squared, eps=eps)
    d_s = d_s / (d_s.sum() / (d_s > 0).sum())  # d >= 0, so this is the mean of the positive entries
    loss_d = F.smooth_l1_loss(d_s, d_t)
    loss_a = F.smooth_l1_loss(_angles(stu), a_t)
    return distance_weight * loss_d + angle_weight * loss_a


def sp_loss(g_s: torch.Tensor, g_t: torch.Tensor) -> torch.Tensor:
    """Tung & Mori ICCV 2019, "Similarity-Preserving Knowledge Distillation", one pair of maps.

    ``g_s`` [B, ...] and ``g_t`` [B, ...] (typically [B, C, H, W]; channel and spatial sizes may
    differ), flattened to Q [B, ·]::

        G = row_normalise(Q Qᵀ)            (each row of the B×B Gram matrix divided by its L2 norm)
        L = ‖G_t − G_s‖_F² / B²

    Returns a 0-dim tensor (mdistiller returns shape [1]); sum over layers in the distiller.
    """
    _batch_pair("sp_loss", g_s, g_t, exact_dim=None, min_batch=1)
    bsz = g_s.shape[0]
    q_s = g_s.reshape(bsz, -1)
    q_t = g_t.detach().reshape(bsz, -1)
    gram_s = F.normalize(q_s @ q_s.t(), p=2, dim=1)
    gram_t = F.normalize(q_t @ q_t.t(), p=2, dim=1)
    return (gram_t - gram_s).pow(2).sum() / (bsz * bsz)


def _pkt_probs(f: torch.Tensor, eps: float) -> torch.Tensor:
    f = f / (torch.linalg.vector_norm(f, dim=1, keepdim=True) + eps)
    sim = (f @ f.t() + 1.0) / 2.0
    return sim / sim.sum(1, keepdim=True)


def pkt_loss(f_s: torch.Tensor, f_t: torch.Tensor, *, eps: float) -> torch.Tensor:
    """Passalis & Tefas ECCV 2018, "Learning Deep Representations with Probabilistic Knowledge Transfer".

    ``f_s`` [B, D_s], ``f_t`` [B, D_t]. With x̂ = x / (‖x‖ + eps) and cosine kernel::

        K_ij = (x̂_i · x̂_j + 1) / 2,    P_ij = K_ij / Σ_k K_ik
        L    = (1/B²) Σ_ij P_t,ij · log((P_t,ij + eps) / (P_s,ij + eps))

    A mean over all B² entries (not a per-row sum), as mdistiller. Deviation: the peer zeroes NaNs
    after the division (they only arise with eps = 0); here eps must be > 0, so an all-zero row maps
    to zero without NaN, and NaN inputs propagate instead of being hidden.
    """
    _batch_pair("pkt_loss", f_s, f_t, exact_dim=2, min_batch=1)
    _number("eps", eps, positive=True)
    p_s = _pkt_probs(f_s, eps)
    p_t = _pkt_probs(f_t.detach(), eps)
    return torch.mean(p_t * torch.log((p_t + eps) / (p_s + eps)))


def _rbf_taylor(f: torch.Tensor, *, gamma: float, order: int) -> torch.Tensor:
    f = F.normalize(f, p=2, dim=1)
    x = (2.0 * gamma) * (f @ f.t())
    term = torch.ones_like(x)
    series = term
    for p in range(1, order + 1):
        term = term * x / p
        series = series + term
    return torch.exp(torch.tensor(-2.0 * gamma, dtype=f.dtype, device=f.device)) * series


def cc_loss(
    f_s: torch.Tensor,
    f_t: torch.Tensor,
    *,
    variant: str,
    gamma: float | None = None,
    order: int | None = None,
) -> torch.Tensor:
    """Peng et al. ICCV 2019, "Correlation Congruence for Knowledge Distillation" (CC).

    Both inputs stay differentiable (no detach): in RepDistiller both embeddings are trained.

    ``variant="kernel"`` (the paper; requires ``gamma > 0`` and an int ``order >= 0``): ``f_s`` [B, D_s],
    ``f_t`` [B, D_t]. Rows are L2-normalised, so ‖x_i − x_j‖² = 2 − 2 x_i·x_j and the Gaussian RBF
    kernel exp(−γ ‖x_i − x_j‖²) = e^{−2γ} exp(2γ x_i·x_j) is replaced by its order-P Taylor series::

        k(x_i, x_j) ≈ Σ_{p=0..P} e^{−2γ} (2γ)^p / p! · (x_i·x_j)^p
        L = (1/B²) Σ_ij (k_s(i, j) − k_t(i, j))²

    The setting used for CC on CIFAR-100 (paper; also Knowledge-Distillation-Zoo) is γ = 0.4, P = 2;
    those values belong in the config. As P → ∞ this tends to the exact Gaussian-kernel loss.

    ``variant="consecutive"`` (RepDistiller's ``Correlation``; ``gamma``/``order`` must be omitted):
    ``f_s``, ``f_t`` [B, D] of equal shape, B >= 2, δ = |f_s − f_t|::

        L = (1/(B−1)) Σ_{i=0..B−2} Σ_d δ[i, d] · δ[i+1, d]

    This pairs consecutive batch rows, so it depends on the batch order; it is not the paper's kernel.
    """
    if variant == "consecutive":
        if gamma is not None or order is not None:
            raise ValueError("cc_loss: gamma and order apply to variant='kernel' only")
        _batch_pair("cc_loss", f_s, f_t, exact_dim=2, min_batch=2)
        if f_s.shape != f_t.shape:
            raise ValueError(f"cc_loss: shapes differ: {tuple(f_s.shape)} vs {tuple(f_t.shape)}")
        delta = (f_s - f_t).abs()
        return (delta[:-1] * delta[1:]).sum(1).mean()
    if variant == "kernel":
        if gamma is None or order is None:
            raise ValueError("cc_loss: variant='kernel' requires gamma and order")
        _number("gamma", gamma, positive=True)
        if isinstance(order, bool) or not isinstance(order, int) or order < 0:
            raise ValueError(f"order must be an int >= 0, got {order!r}")
        _batch_pair("cc_loss", f_s, f_t, exact_dim=2, min_batch=1)
        k_s = _rbf_taylor(f_s, gamma=gamma, order=order)
        k_t = _rbf_taylor(f_t, gamma=gamma, order=order)
        return (k_s - k_t).pow(2).mean()
    raise ValueError(f"cc_loss: variant must be 'kernel' or 'consecutive', got {variant!r}")
