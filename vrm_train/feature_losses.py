"""Feature-map and contrastive distillation losses as pure functions (torch only).

The conventions of :mod:`vrm_train.losses` hold: student tensor(s) first, teacher second, keyword-only
hyper-parameters without defaults, a 0-dim tensor back, the teacher side detached. The formulas and
reductions match the peer implementations recorded in ``shared/reference/losses_C.pt`` (RepDistiller
``distiller_zoo/AT.py``, ``FitNet.py``, ``crd/criterion.py``; mdistiller ``ReviewKD.py``).
"""

import torch
import torch.nn.functional as F

__all__ = ["at_loss", "at_map", "crd_nce_loss", "hcl_loss", "hint_loss"]


def _pairs(fn: str, g_s, g_t) -> None:
    if not isinstance(g_s, list | tuple) or not isinstance(g_t, list | tuple):
        raise ValueError(f"{fn}: g_s and g_t must be lists of feature maps")
    if len(g_s) != len(g_t) or not g_s:
        raise ValueError(
            f"{fn}: needs the same non-zero number of student and teacher maps, got {len(g_s)}, {len(g_t)}"
        )
    for i, (s, t) in enumerate(zip(g_s, g_t, strict=True)):
        if s.dim() != 4 or t.dim() != 4 or s.shape[0] != t.shape[0]:
            raise ValueError(
                f"{fn}: pair {i} must be [B, C, H, W] maps with one batch size, got {tuple(s.shape)}, {tuple(t.shape)}"
            )


def at_map(f: torch.Tensor, *, p: float) -> torch.Tensor:
    """Attention map of ``f`` [B, C, H, W]: the channel mean of f^p, flattened and L2-normalised per sample."""
    return F.normalize(f.pow(p).mean(1).reshape(f.shape[0], -1))


def at_loss(g_s: list[torch.Tensor], g_t: list[torch.Tensor], *, p: float) -> torch.Tensor:
    """Zagoruyko & Komodakis ICLR 2017, "Paying More Attention to Attention" (AT), summed over map pairs.

    Per pair (channel counts may differ): the map with the larger side H is average-pooled to the other's
    (H, H) first; then with a(f) = normalise(mean_c f^p) flattened per sample::

        L_pair = mean over B·H·W of (a(f_s) − a(f_t))²         (not halved, as both peers)
        L      = Σ_pairs L_pair

    Usage: ``at_loss([s1, s2, s3], [t1, t2, t3], p=2.0)`` (the published CIFAR weight is 1000).
    """
    _pairs("at_loss", g_s, g_t)
    total = g_s[0].new_zeros(())
    for s, t in zip(g_s, g_t, strict=True):
        t = t.detach()
        hs, ht = s.shape[2], t.shape[2]
        if hs > ht:
            s = F.adaptive_avg_pool2d(s, (ht, ht))
        elif hs < ht:
            t = F.adaptive_avg_pool2d(t, (hs, hs))
        total = total + (at_map(s, p=p) - at_map(t, p=p)).pow(2).mean()
    return total


def hint_loss(f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
    """Romero et al. ICLR 2015, "FitNets: Hints for Thin Deep Nets": mean squared error between the
    (regressed) student map and the teacher map of the same shape."""
    if f_s.shape != f_t.shape:
        raise ValueError(
            f"hint_loss: shapes differ: {tuple(f_s.shape)} vs {tuple(f_t.shape)} (regress the student first)"
        )
    return F.mse_loss(f_s, f_t.detach())


def hcl_loss(fs: list[torch.Tensor], ft: list[torch.Tensor]) -> torch.Tensor:
    """Chen et al. CVPR 2021, "Distilling Knowledge via Knowledge Review": hierarchical context loss.

    Per level of side h: the MSE of the maps plus, for each l in (4, 2, 1) with l < h, the MSE of both
    maps average-pooled to (l, l) with weights 1/2, 1/4, 1/8 in turn; divided by the sum of the weights
    used. Summed (not averaged) over levels, as mdistiller's ``hcl_loss``.
    """
    _pairs("hcl_loss", fs, ft)
    total = fs[0].new_zeros(())
    for s, t in zip(fs, ft, strict=True):
        if s.shape != t.shape:
            raise ValueError(f"hcl_loss: level shapes differ: {tuple(s.shape)} vs {tuple(t.shape)}")
        t = t.detach()
        h = s.shape[2]
        loss, cnt, tot = F.mse_loss(s, t), 1.0, 1.0
        for lv in (4, 2, 1):
            if lv >= h:
                continue
            cnt /= 2.0
            loss = loss + cnt * F.mse_loss(
                F.adaptive_avg_pool2d(s, (lv, lv)), F.adaptive_avg_pool2d(t, (lv, lv))
            )
            tot += cnt
        total = total + loss / tot
    return total


_NCE_EPS = 1e-7  # as in CRD's ContrastLoss


def crd_nce_loss(p: torch.Tensor, *, n_data: int) -> torch.Tensor:
    """Tian et al. ICLR 2020, "Contrastive Representation Distillation": the NCE loss of one side.

    ``p`` [B, K+1] (or [B, K+1, 1]): the normalised scores exp(⟨v, m⟩ / T) / Z of each sample's positive
    (column 0) and K negatives. With m = K and P_n = 1 / n_data::

        L = −[Σ_b log(p_b0 / (p_b0 + m·P_n + 1e-7)) + Σ_{b,k≥1} log(m·P_n / (p_bk + m·P_n + 1e-7))] / B
    """
    p = p.reshape(p.shape[0], -1)
    if p.shape[1] < 2:
        raise ValueError(
            f"crd_nce_loss: needs a positive and at least one negative per row, got {tuple(p.shape)}"
        )
    if isinstance(n_data, bool) or not isinstance(n_data, int) or n_data < 1:
        raise ValueError(f"n_data must be a positive int, got {n_data!r}")
    m = p.shape[1] - 1
    noise = m / n_data
    log_pos = torch.log(p[:, 0] / (p[:, 0] + (noise + _NCE_EPS)))
    log_neg = torch.log(noise / (p[:, 1:] + (noise + _NCE_EPS)))
    return -(log_pos.sum() + log_neg.sum()) / p.shape[0]
