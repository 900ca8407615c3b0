"""Duplicated images and the undefined-edge rule (spec §2.4): gradient norms with and without the rule.

    python -m bench.undefined_edges                  # B = 64, C = 10, the default VRM options

A batch where some images appear with an identical virtual view (as ~5 % of digits images do: RandAugment
left them unchanged) gets teacher-only, student-only or both-side perturbations of 1e-7…1e-2 on those rows.
Columns: the norm of the gradient of the VRM loss w.r.t. the student logits, as a multiple of the norm on
the unperturbed duplicated batch, for the spec's formula without the rule (every edge materialised with
``unit``, written here) and for ``vrm_train.relations.vrm_loss`` (the rule, τ = 1e-5).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from vrm_train import relations as R
from vrm_train.config import VRMConfig

EPS = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


def without_rule(s, s_v, t, t_v, *, uep_ratio, huber_delta, lambda_is, lambda_ic, **_):
    """cross_view + z-score + cross-entropy UEP, straight from the spec, with no undefined-edge rule."""
    zs, zt = [R.zscore(x) for x in (s, s_v)], [R.zscore(x.detach()) for x in (t, t_v)]
    e_s = F.normalize(zs[0][:, None] - zs[1][None], dim=-1, eps=1e-12)
    e_t = F.normalize(zt[0][:, None] - zt[1][None], dim=-1, eps=1e-12)
    cand = R.rep_candidates("cross_view", s.shape[0])
    keep = R.uep_mask(
        R.uep_scores(s, s_v, is_edges="cross_view", uep="cross_entropy"), cand, uep_ratio=uep_ratio
    )
    l_is = F.smooth_l1_loss(e_s, e_t, reduction="none", beta=huber_delta).sum(-1)[keep].mean()
    ws, wt = torch.cat(zs).T, torch.cat(zt).T
    f_s, f_t = (F.normalize(w[:, None] - w[None], dim=-1, eps=1e-12) for w in (ws, wt))
    tri = torch.ones(ws.shape[0], ws.shape[0], dtype=torch.bool).triu(1)
    l_ic = F.smooth_l1_loss(f_s, f_t, reduction="none", beta=huber_delta).sum(-1)[tri].mean()
    return lambda_is * l_is + lambda_ic * l_ic


def with_rule(s, s_v, t, t_v, **opts):
    return R.vrm_loss(s, s_v, t, t_v, **opts).loss


def grad_norm(loss_fn, logits, opts) -> float:
    s, s_v, t, t_v = logits
    a, b = s.clone().requires_grad_(), s_v.clone().requires_grad_()
    g = torch.autograd.grad(loss_fn(a, b, t, t_v, **opts), (a, b))
    return float(torch.cat([x.flatten() for x in g]).double().norm())


def batch(b: int, c: int, n_dup: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(b, c, generator=g) * 3
    s = 0.7 * t + torch.randn(b, c, generator=g)
    t_v, s_v = t + 0.5 * torch.randn(b, c, generator=g), s + 0.5 * torch.randn(b, c, generator=g)
    dup = torch.arange(n_dup) * (b // n_dup)
    s_v[dup], t_v[dup] = s[dup], t[dup]  # these images' virtual views are identical to the real ones
    return (s, s_v, t, t_v), dup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--duplicates", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = VRMConfig()
    opts = dict(
        is_edges="cross_view",
        zscore=True,
        uep="cross_entropy",
        uep_ratio=cfg.uep_ratio,
        huber_delta=cfg.huber_delta,
        lambda_is=cfg.lambda_is,
        lambda_ic=cfg.lambda_ic,
    )
    logits, dup = batch(args.batch, args.classes, args.duplicates, args.seed)
    base = {
        name: grad_norm(fn, logits, opts) for name, fn in (("without", without_rule), ("with", with_rule))
    }
    print(
        f"B={args.batch}, C={args.classes}, {len(dup)} duplicated images, default VRM options (λ={cfg.lambda_is:g},"
    )
    print(
        f"δ={cfg.huber_delta:g}, UEP cross_entropy {cfg.uep_ratio:g}), float32. Unperturbed gradient norm: without the"
    )
    print(f"rule {base['without']:.4g}, with the rule {base['with']:.4g}. Table: norm / unperturbed norm.\n")
    print("| perturbed side | ε | without the rule | with the rule (τ = 1e-5) |")
    print("|---|---|---|---|")
    for side in ("teacher", "student", "both"):
        for eps in EPS:
            g = torch.Generator().manual_seed(1)
            s, s_v, t, t_v = (x.clone() for x in logits)
            if side in ("teacher", "both"):
                t_v[dup] += eps * torch.randn(len(dup), args.classes, generator=g)
            if side in ("student", "both"):
                s_v[dup] += eps * torch.randn(len(dup), args.classes, generator=g)
            cells = [
                grad_norm(fn, (s, s_v, t, t_v), opts) / base[k]
                for k, fn in (("without", without_rule), ("with", with_rule))
            ]
            print(f"| {side} | {eps:g} | {cells[0]:.3g} | {cells[1]:.3g} |")


if __name__ == "__main__":
    main()
