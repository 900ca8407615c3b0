"""Config files: YAML with YAML 1.2 booleans, ``_base_`` inheritance and dotted ``key=value`` overrides,
read into plain nested dicts; :mod:`vrm_train.config` types and validates them.

    values = apply_overrides(read_yaml("configs/fashion_mnist/vrm.yaml"), ["optim.lr=0.1"])
"""

from __future__ import annotations

import os
import re

import yaml


class ConfigError(ValueError):
    """A malformed configuration: the message names the offending key and what is expected."""


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2 booleans: only true/false are booleans, so ``amp: off`` stays the string "off"."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml(path: str, _seen: tuple[str, ...] = ()) -> dict:
    """Read a config file, resolving ``_base_`` (a path or list of paths relative to the file) first."""
    path = os.path.abspath(path)
    if path in _seen:
        raise ConfigError(f"config file {path} includes itself through _base_")
    if not os.path.isfile(path):
        raise ConfigError(
            f"config file not found: {path} (a packaged config can be named instead, e.g. "
            "fashion_mnist/vrm; `vrm-train configs` lists them)"
        )
    with open(path, encoding="utf-8") as f:
        try:
            data = _yaml(f.read()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    bases = data.pop("_base_", [])
    merged: dict = {}
    for b in [bases] if isinstance(bases, str) else bases:
        merged = _merge(merged, read_yaml(os.path.join(os.path.dirname(path), b), (*_seen, path)))
    return _merge(merged, data)


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """Apply dotted ``key=value`` overrides; values are parsed as YAML scalars/lists (``lr=0.1``, ``m=[1,2]``)."""
    out = _merge({}, values)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key=value (e.g. optim.lr=0.1)")
        key, raw = item.split("=", 1)
        try:
            value = _yaml(raw) if raw != "" else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override '{item}': cannot parse value {raw!r}: {e}") from e
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[parts[-1]] = value
    return out
