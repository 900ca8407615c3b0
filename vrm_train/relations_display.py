"""Display functions of the VRM maths: dense IS/IC graphs and per-edge maps (losses, cosines, undefined
edges) for drawing graphs in vrm_viz and the app (torch only, like :mod:`vrm_train.relations`).

Everything here is computed by the same edge core as the loss (``relations._edges``: Gram path, direct path,
undefined-edge rule of spec §2.4), so a map shows exactly what :func:`vrm_train.relations.vrm_loss` sees.
``from vrm_train import relations_display as RD; RD.is_graph(z, z_v, zscore=True)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from vrm_train import relations
from vrm_train.relations import (
    EDGE_TOL,
    _Edges,
    _edges,
    _ic_sides,
    _inputs,
    _is_sides,
    _options,
    _prepare,
    _unit,
    rep_candidates,
    zscore,
)

__all__ = [
    "EdgeLosses",
    "ic_edge_cosines",
    "ic_edge_losses",
    "ic_graph",
    "ic_undefined_edges",
    "is_edge_cosines",
    "is_edge_losses",
    "is_graph",
    "is_undefined_edges",
]


class EdgeLosses(NamedTuple):
    loss: Tensor  # per-edge ℓ (0 outside the edge set), in the logits' dtype
    dropped: Tensor  # int64 number of dropped elements per edge (residual rule; else 0)


def is_graph(
    z: Tensor, z_v: Tensor | None, *, zscore: bool, edge_tol: float = EDGE_TOL, partner=None
) -> Tensor:
    """Dense IS graph of one model: [2B, 2B, C] (z_v None: [B, B, C]), G[u, v] = unit(x_u − x_v), vertex
    order [real; virtual]; G[u, u] = 0 and G[v, u] = −G[u, v]. O(B²C) memory: for display of small batches.
    An undefined edge (spec §2.4: for this model, or for ``partner`` = (z', z'_v), the other model's logits,
    when given) is 0, like a self-loop."""
    return _dense_graph(z, z_v, zscore, edge_tol, partner, columns=False)


def ic_graph(
    z: Tensor, z_v: Tensor | None, *, zscore: bool, edge_tol: float = EDGE_TOL, partner=None
) -> Tensor:
    """Dense IC graph of one model: [C, C, 2B] (z_v None: [C, C, B]), G[c, d] = unit(w_c − w_d), w_c = column
    c of [z; z̃] (z-scored per sample first when asked). O(C²B) memory: for display only. Undefined edges
    (see :func:`is_graph`) are 0."""
    return _dense_graph(z, z_v, zscore, edge_tol, partner, columns=True)


def _dense_graph(z, z_v, standardise, tol, partner, columns):
    _options(zscore=standardise, edge_tol=tol)
    named = [("z", z), ("z_v", z_v)]
    if partner is not None:
        if len(partner) != 2 or (partner[1] is None) != (z_v is None):
            raise ValueError("partner must be (z', z'_v), with a virtual view exactly when z_v is given")
        named += [("partner[0]", partner[0]), ("partner[1]", partner[1])]
    _inputs(named, virtual_needed=False, why="")
    undefined, diff = None, None
    for m, m_v in [(z, z_v)] + ([] if partner is None else [tuple(partner)]):
        x = m if m_v is None else torch.cat([m, m_v])
        x = zscore(x) if standardise else x
        x = x.T if columns else x
        diff = x[:, None, :] - x[None, :, :] if diff is None else diff
        with torch.no_grad():
            u, v = x[:, None, :].detach().double(), x[None, :, :].detach().double()
            mine = relations._undefined(u, v, u - v, tol)  # looked up at call time: patchable
        undefined = mine if undefined is None else undefined | mine
    return _unit(diff.masked_fill(undefined[..., None], 0))


def _is_public(s, s_v, t, t_v, is_edges, standardise, delta, tol, residual=False) -> _Edges:
    _options(is_edges=is_edges, zscore=standardise, edge_tol=tol)
    *sides, same = _is_sides(_prepare(s, s_v, t, t_v, is_edges, standardise), is_edges)
    return _edges(*sides, rep_candidates(is_edges, s.shape[0], device=s.device), delta, tol, residual, same)


def _ic_public(s, s_v, t, t_v, standardise, delta, tol) -> _Edges:
    _options(zscore=standardise, edge_tol=tol)
    z = _prepare(s, s_v, t, t_v, "real_only" if s_v is None else "all", standardise)
    *sides, cand = _ic_sides(z)
    return _edges(*sides, cand, delta, tol, same=True)


def is_edge_losses(
    s, s_v, t, t_v, *, is_edges: str, zscore: bool, huber_delta: float, residual: bool, edge_tol=EDGE_TOL
):
    """Per-edge IS loss ℓ of every edge of the set (no UEP ratio pruning), fast path. Returns EdgeLosses with
    loss [B, B] (cross_view, real_only) or [2B, 2B] (all), in s.dtype, 0 outside the edge set and on
    undefined edges; residual=True applies the residual rule of :func:`relations.vrm_loss` (dropped = number
    of dropped elements per edge)."""
    _options(huber_delta=huber_delta)
    e = _is_public(s, s_v, t, t_v, is_edges, zscore, float(huber_delta), edge_tol, bool(residual))
    return EdgeLosses(e.value.to(s.dtype), e.dropped)


def ic_edge_losses(s, s_v, t, t_v, *, zscore: bool, huber_delta: float, edge_tol=EDGE_TOL) -> Tensor:
    """Per-edge IC loss [C, C] in s.dtype: ℓ_cd for c < d (0 if undefined), 0 elsewhere. s_v = t_v = None:
    real batch only."""
    _options(huber_delta=huber_delta)
    return _ic_public(s, s_v, t, t_v, zscore, float(huber_delta), edge_tol).value.to(s.dtype)


def is_edge_cosines(s, s_v, t, t_v, *, is_edges: str, zscore: bool, edge_tol=EDGE_TOL) -> Tensor:
    """cos(E^S_uv, E^T_uv) for the IS edge set ([B, B] or [2B, 2B], s.dtype); NaN outside the edge set,
    0 for an undefined edge (:func:`is_undefined_edges` tells which). Fast path: Gram matrices, near-duplicate
    vertices computed directly."""
    return _is_public(s, s_v, t, t_v, is_edges, zscore, None, edge_tol).value.to(s.dtype)


def ic_edge_cosines(s, s_v, t, t_v, *, zscore: bool, edge_tol=EDGE_TOL) -> Tensor:
    """cos(F^S_cd, F^T_cd) [C, C] in s.dtype for c < d (0 if undefined), NaN elsewhere. s_v = t_v = None: real
    batch only."""
    return _ic_public(s, s_v, t, t_v, zscore, None, edge_tol).value.to(s.dtype)


def is_undefined_edges(s, s_v, t, t_v, *, is_edges: str, zscore: bool, edge_tol=EDGE_TOL) -> Tensor:
    """bool mask of the IS edges of the set (layout of :func:`rep_candidates`) that are undefined (spec §2.4:
    for the student or the teacher, ‖x_u − x_v‖² ≤ edge_tol² (‖x_u‖² + ‖x_v‖²)), decided as vrm_loss does."""
    return _is_public(s, s_v, t, t_v, is_edges, zscore, None, edge_tol).undefined


def ic_undefined_edges(s, s_v, t, t_v, *, zscore: bool, edge_tol=EDGE_TOL) -> Tensor:
    """bool [C, C]: the class edges c < d that are undefined (two classes with (almost) identical columns)."""
    return _ic_public(s, s_v, t, t_v, zscore, None, edge_tol).undefined
