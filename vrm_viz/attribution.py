"""Pixel attributions of teacher and student (captum: Integrated Gradients and Saliency).

    heat = attribute(model, x, target=3, method="integrated_gradients")          # same shape as x
    rows = explain({"teacher": t, "student": s}, snap, [0, 5], method="saliency", target="true")

Integrated Gradients (Sundararajan et al., 2017) integrates the gradient of the target logit along the
straight path from a baseline to the input; its attributions add up to f(x) − f(baseline) (completeness;
captum reports the residual as the convergence delta). Our baseline is the black image (all pixels 0
before normalisation). Saliency (Simonyan et al., 2014) is the absolute gradient of the target logit at
the input. captum is imported inside the functions that need it (it is an optional dependency).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from vrm_viz.models import normalize_images

__all__ = ["METHODS", "TARGETS", "ModelAttribution", "SampleAttribution", "attribute", "explain"]

METHODS = ("integrated_gradients", "saliency")
TARGETS = ("true", "predicted")


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    target: int | torch.Tensor,
    *,
    method: str,
    baseline: torch.Tensor | float | None = None,
    n_steps: int = 50,
    return_delta: bool = False,
):
    """Attributions of ``model``'s ``target`` logit to each element of the input ``x`` [B, ...].

    integrated_gradients: captum's IntegratedGradients with ``baseline`` (None: zeros), ``n_steps`` points
    of the Gauss-Legendre rule; ``return_delta`` also returns the convergence delta [B].
    saliency: captum's Saliency, |∂ logit / ∂ x| (``baseline`` and ``n_steps`` unused, delta None).
    The model is put in eval mode for the call and its mode is restored.
    """
    from captum.attr import IntegratedGradients, Saliency

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive int; got {n_steps!r}")
    was = model.training
    model.eval()
    inputs = x.detach().clone().requires_grad_(True)
    try:
        if method == "saliency":
            out, delta = Saliency(model).attribute(inputs, target=target, abs=True), None
        else:
            base = torch.zeros_like(inputs) if baseline is None else baseline
            out, delta = IntegratedGradients(model).attribute(
                inputs,
                baselines=base,
                target=target,
                n_steps=n_steps,
                internal_batch_size=max(n_steps, 1),
                return_convergence_delta=True,
            )
    finally:
        model.train(was)
    out = out.detach()
    return (out, None if delta is None else delta.detach()) if return_delta else out


@dataclass
class ModelAttribution:
    """One model's answer on one sample. heatmap [H, W]: IG summed over channels (signed), saliency
    maximum over channels (≥ 0). delta: IG convergence delta (NaN for saliency)."""

    target: int
    target_label: str
    predicted: int
    predicted_label: str
    prob_target: float
    heatmap: np.ndarray
    delta: float


@dataclass
class SampleAttribution:
    """A sample of the snapshot batch: its image(s) ([H, W] grey or [H, W, 3] RGB, uint8) and each model's
    attribution, keyed "teacher" / "student"."""

    sample: int
    index: int
    label: str
    view: str
    image: np.ndarray
    models: dict[str, ModelAttribution] = field(default_factory=dict)


def _display(image_u8: torch.Tensor) -> np.ndarray:
    img = image_u8.permute(1, 2, 0).numpy()
    return img[:, :, 0] if img.shape[2] == 1 else img


def explain(
    models: dict[str, nn.Module],
    snap,
    samples: list[int],
    *,
    method: str,
    target: str = "true",
    view: str = "real",
    n_steps: int = 32,
) -> list[SampleAttribution]:
    """Attributions of every model on the chosen samples (positions in the snapshot batch).

    target "true": the sample's label; "predicted": each model's own top class (so teacher and student may
    explain different classes). view "real" | "virtual": which of the snapshot's two images is explained.
    IG baseline: the black image, normalised like the inputs.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}; got {target!r}")
    if view not in ("real", "virtual"):
        raise ValueError(f"view must be 'real' or 'virtual'; got {view!r}")
    if not samples:
        raise ValueError("choose at least one sample")
    bad = [i for i in samples if not 0 <= int(i) < snap.batch_size]
    if bad:
        raise ValueError(f"samples {bad} are outside the batch of {snap.batch_size}")
    idx = torch.tensor([int(i) for i in samples])
    images = (snap.image_v if view == "virtual" else snap.image)[idx]
    x = normalize_images(images, snap.mean, snap.std)
    baseline = normalize_images(torch.zeros_like(images), snap.mean, snap.std)
    out = [
        SampleAttribution(
            sample=int(i),
            index=int(snap.index[i]),
            label=snap.classes[int(snap.targets[i])],
            view=view,
            image=_display(images[k]),
        )
        for k, i in enumerate(idx.tolist())
    ]
    for name, model in models.items():
        with torch.no_grad():
            probs = model.eval()(x).softmax(1)
        pred = probs.argmax(1)
        tgt = snap.targets[idx] if target == "true" else pred
        attr, delta = attribute(
            model, x, tgt, method=method, baseline=baseline, n_steps=n_steps, return_delta=True
        )
        heat = attr.sum(1) if method == "integrated_gradients" else attr.amax(1)
        for k, rec in enumerate(out):
            c, p = int(tgt[k]), int(pred[k])
            rec.models[name] = ModelAttribution(
                target=c,
                target_label=snap.classes[c],
                predicted=p,
                predicted_label=snap.classes[p],
                prob_target=float(probs[k, c]),
                heatmap=heat[k].numpy(),
                delta=float("nan") if delta is None else float(delta[k]),
            )
    return out
