"""2-D maps of the teacher's and the student's pooled features on a snapshot batch (PCA or t-SNE).

    df = embedding_frame(snap, method="tsne", perplexity=10.0, seed=0)   # one row per (model, sample)
    neighbour_agreement(snap.feat_t, snap.feat_s, k=5)                  # shared k-NN fraction

Each model gets its own projection (their feature spaces differ in size and meaning); what can be compared
is the arrangement: which samples sit together. :func:`neighbour_agreement` puts a number on that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

__all__ = ["METHODS", "embedding_frame", "neighbour_agreement", "project"]

METHODS = ("pca", "tsne")
EXACT_TSNE_MAX = 1000  # up to this many samples exact t-SNE (O(N²)) is faster than Barnes-Hut, and exact


def _array(features) -> np.ndarray:
    x = (
        features.detach().cpu().double().numpy()
        if isinstance(features, torch.Tensor)
        else np.asarray(features)
    )
    if x.ndim != 2:
        raise ValueError(f"features must be 2-D [N, D]; got shape {x.shape}")
    if x.shape[0] < 3:
        raise ValueError(f"need at least 3 samples to project; got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    return x.astype(np.float64)


def _pca2(x: np.ndarray) -> np.ndarray:
    """The first two principal-component scores of x [N, D] (D ≥ 2), each axis signed so that the largest
    entry of its direction is positive (scikit-learn's convention, so layouts match its PCA). NumPy only:
    importing scikit-learn costs about a second, the page's first load."""
    centred = x - x.mean(0)
    vt = np.linalg.svd(centred, full_matrices=False)[2]
    vt = vt[:2]
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])
    signs[signs == 0] = 1.0
    return centred @ (vt * signs[:, None]).T


def project(
    features, *, method: str, seed: int = 0, perplexity: float = 30.0, max_iter: int = 1000
) -> np.ndarray:
    """[N, D] features → [N, 2] coordinates.

    pca: the first two principal components (scikit-learn's sign convention makes them deterministic; computed
    with NumPy, equal to scikit-learn's PCA).
    tsne: scikit-learn's t-SNE started from the PCA layout with ``random_state=seed`` (deterministic for a
    given seed); ``perplexity`` is capped at (N − 1) / 3 so small batches stay valid; ``max_iter`` ≥ 250
    optimisation steps (fewer: faster, rougher). Exact gradients up to :data:`EXACT_TSNE_MAX` samples
    (snapshot batches are small), the Barnes-Hut approximation above.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    x = _array(features)
    if x.shape[1] < 2:
        return np.column_stack([x[:, 0], np.zeros(len(x))])
    if method == "pca":
        return _pca2(x)
    from sklearn.manifold import TSNE

    if not perplexity > 0:
        raise ValueError(f"perplexity must be > 0; got {perplexity!r}")
    perp = float(min(perplexity, max((x.shape[0] - 1) / 3.0, 1.0)))
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 250:
        raise ValueError(f"max_iter must be an int >= 250; got {max_iter!r}")
    tsne = TSNE(
        n_components=2,
        perplexity=perp,
        init="pca",
        random_state=seed,
        learning_rate="auto",
        max_iter=max_iter,
        method="exact" if x.shape[0] <= EXACT_TSNE_MAX else "barnes_hut",
    )
    return tsne.fit_transform(x)


def embedding_frame(snap, *, method: str, seed: int = 0, perplexity: float = 30.0) -> pd.DataFrame:
    """One row per (model, sample) of a snapshot: columns model ("teacher" | "student"), sample (position
    in the batch), index (dataset index), x, y, target, label (class name), predicted, predicted_label,
    correct. Without teacher features (a vanilla run) only the student rows are returned."""
    sides = [("teacher", snap.feat_t, snap.t), ("student", snap.feat_s, snap.s)]
    rows = []
    for model, feats, logits in sides:
        if feats is None or logits is None:
            continue
        xy = project(feats, method=method, seed=seed, perplexity=perplexity)
        pred = logits.argmax(1)
        targets = snap.targets
        rows.append(
            pd.DataFrame(
                {
                    "model": model,
                    "sample": np.arange(len(xy)),
                    "index": snap.index.numpy(),
                    "x": xy[:, 0],
                    "y": xy[:, 1],
                    "target": targets.numpy(),
                    "label": [snap.classes[int(c)] for c in targets],
                    "predicted": pred.numpy(),
                    "predicted_label": [snap.classes[int(c)] for c in pred],
                    "correct": (pred == targets).numpy(),
                }
            )
        )
    if not rows:
        raise ValueError(f"snapshot {snap.path} holds no pooled features")
    return pd.concat(rows, ignore_index=True)


def neighbour_agreement(feat_a, feat_b, *, k: int = 5) -> float:
    """Mean over samples of |kNN_a(i) ∩ kNN_b(i)| / k, Euclidean k nearest neighbours (self excluded) in
    each feature space: 1 = both models arrange the batch identically, about k / (N − 1) = chance."""
    a, b = _array(feat_a), _array(feat_b)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"the two feature sets hold {a.shape[0]} and {b.shape[0]} samples")
    n = a.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, {n - 1}]; got {k}")

    def knn(x):
        d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        return np.argsort(d, axis=1, kind="stable")[:, :k]

    na, nb = knn(a), knn(b)
    return float(np.mean([len(set(na[i]) & set(nb[i])) / k for i in range(n)]))
