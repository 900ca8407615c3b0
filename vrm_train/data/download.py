"""Verified downloads: stream a URL to a temporary file beside the target with a progress bar, check its
MD5, then rename it into place atomically. A failed or mismatched download leaves nothing behind.

Usage::

    path = download_file(CIFAR_SPECS["cifar100"].url, root / "cifar-100-python.tar.gz",
                         md5=CIFAR_SPECS["cifar100"].md5)
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from .datasets import DatasetError

__all__ = ["download_file", "file_md5"]


def file_md5(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def download_file(
    url: str,
    dest: str | os.PathLike,
    *,
    md5: str | None,
    progress: bool = True,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``.

    If ``dest`` already exists with the expected ``md5`` nothing is fetched. The body is streamed into a
    temporary file in ``dest``'s folder while its MD5 is computed; on success it is renamed onto ``dest``
    (atomic on one filesystem), on an HTTP/network error or an MD5 mismatch the temporary file is removed
    and :class:`DatasetError` is raised. ``md5=None`` skips the check (not recommended).
    """
    dest = Path(dest).expanduser()
    if dest.is_file() and md5 is not None and file_md5(dest) == md5:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.md5()
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                total = resp.headers.get("Content-Length")
                with tqdm(
                    total=int(total) if total else None,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    disable=not progress,
                ) as bar:
                    while chunk := resp.read(chunk_size):
                        out.write(chunk)
                        h.update(chunk)
                        bar.update(len(chunk))
        except urllib.error.HTTPError as e:
            raise DatasetError(f"download of {url} failed: HTTP {e.code} {e.reason}") from e
        except (urllib.error.URLError, OSError) as e:
            raise DatasetError(
                f"download of {url} failed: {e}; check the network or fetch it manually"
            ) from e
        got = h.hexdigest()
        if md5 is not None and got != md5:
            raise DatasetError(
                f"download of {url} has md5 {got}, expected {md5}: the file is corrupt or not the official "
                f"one; it was deleted. Retry, or place a verified copy at {dest}"
            )
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest
