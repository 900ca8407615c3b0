"""Intermediate features by module path, taken with forward hooks (the torchdistill habit).

Feature methods (FitNet, AT, ReviewKD, ...) name the modules whose outputs they match, as dotted paths
into any ``nn.Module`` (``"layer2"``, ``"blocks.4"``, ``"encoder.layers.3.mlp"``), so they work on a
user's own architecture without editing its code. The zoo declares the standard stage outputs of its
models in ``ZooModel.stage_paths`` (equal to ``feats["maps"][1:]``: every stage after the stem)::

    hooks = FeatureHooks(model, ["layer1", "layer2", "layer3"])
    logits = model(x)
    f1, f2, f3 = hooks.collect()          # the outputs of the last forward, in the order asked
    hooks.remove()

A module that runs several times in one forward keeps its last output.
"""

from __future__ import annotations

import difflib

import torch
from torch import nn

__all__ = ["FeatureHooks", "resolve_module", "stage_paths"]


def resolve_module(model: nn.Module, path: str) -> nn.Module:
    """The submodule at the dotted ``path``; a ``ValueError`` listing close names otherwise."""
    names = [n for n, _ in model.named_modules() if n]
    try:
        return model.get_submodule(path) if path else model
    except AttributeError:
        close = difflib.get_close_matches(path, names, n=5, cutoff=0.5)
        hint = f"; close names: {', '.join(close)}" if close else f"; top-level modules: {_top(model)}"
        raise ValueError(f"{type(model).__name__} has no module at path {path!r}{hint}") from None


def _top(model: nn.Module) -> str:
    return ", ".join(n for n, _ in model.named_children()) or "(none)"


def stage_paths(model: nn.Module, layers: list[str] | None = None) -> list[str]:
    """``layers`` if given, else the model's declared stage outputs (``ZooModel.stage_paths``)."""
    if layers:
        return list(layers)
    declared = getattr(model, "stage_paths", None)
    if not declared:
        raise ValueError(
            f"{type(model).__name__} declares no stage outputs (stage_paths): name the modules whose "
            "outputs to use in the method's student_layers / teacher_layers config keys"
        )
    return list(declared)


class FeatureHooks:
    """Forward hooks that keep the outputs of the modules at ``paths`` during each forward pass."""

    def __init__(self, model: nn.Module, paths: list[str]):
        if not paths:
            raise ValueError("FeatureHooks needs at least one module path")
        self.paths = list(paths)
        self._out: dict[str, torch.Tensor] = {}
        self._handles = [resolve_module(model, p).register_forward_hook(self._keeper(p)) for p in self.paths]
        self._model_name = type(model).__name__

    def _keeper(self, path: str):
        def hook(module, args, output):
            if isinstance(output, tuple | list):  # e.g. attention blocks returning (out, weights)
                output = output[0]
            self._out[path] = output

        return hook

    def collect(self) -> list[torch.Tensor]:
        """The outputs of the last forward pass, in the order of ``paths``; cleared afterwards."""
        missing = [p for p in self.paths if p not in self._out]
        if missing:
            raise RuntimeError(
                f"the modules at {missing} of {self._model_name} did not run in the last forward pass"
            )
        out = [self._out[p] for p in self.paths]
        self._out.clear()
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._out.clear()
