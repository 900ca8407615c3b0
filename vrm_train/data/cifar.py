"""CIFAR-10 / CIFAR-100 from the official *python* archives: the extracted folder or the ``.tar.gz``
itself (members are read straight from the tarfile). The files are pickles: they are read with
:class:`RestrictedUnpickler`, which rebuilds numpy arrays and refuses every other global, so a tampered
file cannot run code.

Usage::

    train, test = load_cifar100("~/data", download=True)
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .datasets import DatasetError, TensorImages, default_data_root

__all__ = [
    "CIFAR_SPECS",
    "ForbiddenGlobalError",
    "RestrictedUnpickler",
    "load_cifar",
    "load_cifar10",
    "load_cifar100",
    "safe_unpickle",
]


# --------------------------------------------------------------------------------------------- pickles
def _allowed_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray

    reconstruct = multiarray._reconstruct
    # The official CIFAR archives were written by Python 2 with numpy 1 ("numpy.core.multiarray");
    # numpy 2 writes the same function as "numpy._core.multiarray". Nothing else is needed.
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }


class ForbiddenGlobalError(pickle.UnpicklingError):
    """A pickle asked for a global outside the numpy allow-list."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays and nothing else.

    ``find_class`` resolves only ``numpy.core.multiarray._reconstruct`` (and its numpy-2 spelling
    ``numpy._core.multiarray._reconstruct``), ``numpy.ndarray`` and ``numpy.dtype``; any other global
    (``os.system``, ``builtins.eval``, ...) raises :class:`ForbiddenGlobalError` before it is imported,
    so a malicious file cannot execute code.
    """

    def find_class(self, module: str, name: str) -> object:
        allowed = _allowed_globals()
        if (module, name) in allowed:
            return allowed[(module, name)]
        raise ForbiddenGlobalError(
            f"refusing global {module}.{name}: dataset pickles may only rebuild numpy arrays "
            f"(allowed: {', '.join(f'{m}.{n}' for m, n in sorted(allowed))}); the file is not an "
            "official dataset file or has been tampered with"
        )


def safe_unpickle(data: bytes, *, source: str) -> object:
    """Unpickle ``data`` (read from ``source``) with :class:`RestrictedUnpickler`; bytes stay bytes."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except ForbiddenGlobalError as e:
        raise DatasetError(f"{source}: {e}") from e
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, LookupError) as e:
        raise DatasetError(f"{source}: not a readable dataset pickle ({type(e).__name__}: {e})") from e


# ----------------------------------------------------------------------------------------------- CIFAR
@dataclass(frozen=True)
class _CifarSpec:
    name: str
    folder: str
    archive: str
    url: str
    md5: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: bytes
    names_key: bytes
    num_classes: int


CIFAR_SPECS: dict[str, _CifarSpec] = {
    "cifar10": _CifarSpec(
        "cifar10",
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        "batches.meta",
        b"labels",
        b"label_names",
        10,
    ),
    "cifar100": _CifarSpec(
        "cifar100",
        "cifar-100-python",
        "cifar-100-python.tar.gz",
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        ("train",),
        "test",
        "meta",
        b"fine_labels",
        b"fine_label_names",
        100,
    ),
}


def _cifar_source(spec: _CifarSpec, root: Path) -> Path | None:
    """The extracted folder or the archive under ``root`` (or ``root`` itself), or None."""
    candidates = [root, root / spec.folder, root / spec.archive]
    for c in candidates:
        if c.is_dir() and (c / spec.test_file).is_file():
            return c
        if c.is_file() and c.name.endswith((".tar.gz", ".tgz", ".tar")):
            return c
    return None


def _cifar_missing(spec: _CifarSpec, root: Path) -> DatasetError:
    return DatasetError(
        f"{spec.name} not found under {root}: expected the folder {root / spec.folder}/ or the archive "
        f"{root / spec.archive}. Pass download=True (or --download) to fetch {spec.url}, or download it "
        f"yourself and put it there (md5 {spec.md5})."
    )


def _read_cifar_files(spec: _CifarSpec, source: Path, names: list[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    if source.is_dir():
        for n in names:
            path = source / n
            if not path.is_file():
                raise DatasetError(f"{spec.name}: {path} is missing; the extracted folder is incomplete")
            out[n] = safe_unpickle(path.read_bytes(), source=str(path))
        return out
    try:
        with tarfile.open(source, "r:*") as tar:
            for n in names:
                member = f"{spec.folder}/{n}"
                try:
                    f = tar.extractfile(member)
                except KeyError:
                    f = None
                if f is None:
                    raise DatasetError(
                        f"{spec.name}: {source} has no member {member}; not the official archive"
                    )
                out[n] = safe_unpickle(f.read(), source=f"{source}:{member}")
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as e:
        raise DatasetError(
            f"{spec.name}: cannot read archive {source} ({e}); delete it and download again"
        ) from e
    return out


def _cifar_batch(spec: _CifarSpec, obj: object, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(obj, dict) or b"data" not in obj or spec.label_key not in obj:
        raise DatasetError(f"{where}: expected a dict with keys b'data' and {spec.label_key!r}")
    data, labels = obj[b"data"], np.asarray(obj[spec.label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(f"{where}: b'data' must be uint8 [N, 3072], got {got}")
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise DatasetError(f"{where}: {spec.label_key!r} must hold {data.shape[0]} integer labels")
    if labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise DatasetError(f"{where}: labels outside [0, {spec.num_classes})")
    return data, labels.astype(np.int64)


def load_cifar(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    download: bool = False,
    url: str | None = None,
    md5: str | None = None,
    progress: bool = True,
) -> tuple[TensorImages, TensorImages]:
    """(train, test) of ``"cifar10"`` or ``"cifar100"`` (fine labels) as uint8 ``[N, 3, 32, 32]``.

    ``root`` may be the extracted folder, its parent, the ``.tar.gz`` itself or the folder holding it
    (read member by member, no extraction). ``download=True`` fetches the official archive into ``root``
    (``url``/``md5`` override the official ones) when neither is present.
    """
    if name not in CIFAR_SPECS:
        raise DatasetError(f"unknown CIFAR variant {name!r}; expected one of {sorted(CIFAR_SPECS)}")
    spec = CIFAR_SPECS[name]
    root = Path(root).expanduser() if root is not None else default_data_root()
    source = _cifar_source(spec, root)
    if source is None and download:
        from .download import download_file

        target = root if root.suffix not in (".gz", ".tgz") else root.parent
        source = download_file(url or spec.url, target / spec.archive, md5=md5 or spec.md5, progress=progress)
    if source is None:
        raise _cifar_missing(spec, root)
    files = _read_cifar_files(spec, source, [*spec.train_files, spec.test_file, spec.meta_file])
    meta = files[spec.meta_file]
    if not isinstance(meta, dict) or spec.names_key not in meta:
        raise DatasetError(f"{source}: {spec.meta_file} lacks {spec.names_key!r}")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[spec.names_key]]
    if len(classes) != spec.num_classes:
        raise DatasetError(
            f"{source}: {spec.meta_file} names {len(classes)} classes, expected {spec.num_classes}"
        )

    def build(parts: list[str]) -> TensorImages:
        batches = [_cifar_batch(spec, files[p], f"{source}:{p}") for p in parts]
        data = np.concatenate([b[0] for b in batches]).reshape(-1, 3, 32, 32)
        labels = np.concatenate([b[1] for b in batches])
        return TensorImages(torch.from_numpy(data), torch.from_numpy(labels), classes, name)

    return build(list(spec.train_files)), build([spec.test_file])


def load_cifar10(root=None, **kwargs) -> tuple[TensorImages, TensorImages]:
    """CIFAR-10 (train 50000, test 10000); see :func:`load_cifar` for the arguments."""
    return load_cifar("cifar10", root, **kwargs)


def load_cifar100(root=None, **kwargs) -> tuple[TensorImages, TensorImages]:
    """CIFAR-100 with its 100 fine labels; see :func:`load_cifar` for the arguments."""
    return load_cifar("cifar100", root, **kwargs)
