"""Atomic writes with unique temporary names, and clear errors when the output folder cannot be written.

Every file the trainer writes goes to ``<folder>/.tmp-<random><suffix>`` first (a name no other process
can pick: two writers never collide), is flushed to disk, then renamed over its target. A crash leaves
either the old file or the new one, plus at worst a ``.tmp-*`` file that :func:`remove_temp_files` deletes
on the next start.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import IO

TEMP_PREFIX = ".tmp-"
_OLD_TEMP_NAMES = {"config.yaml.tmp", "metrics.csv.tmp", "summary.json.tmp"}  # fixed names of older versions

# errno values that mean "this folder cannot take the write" (as opposed to a bug)
_NOT_WRITABLE = {
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "not permitted",
}
_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# mkstemp creates files readable by their owner only; the files we publish get the usual permissions
_FILE_MODE = 0o666 & ~_umask()


class OutputError(OSError):
    """The output folder cannot be written (read-only, no permission, disk full); the message says what to do."""


def atomic_write(path: str, write: Callable[[IO], None], *, binary: bool = False) -> None:
    """Call ``write(f)`` on a fresh temporary file beside ``path``, fsync it, then rename it over ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=suffix, dir=folder)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(
            fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})
        ) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write_text(path: str, text: str) -> None:
    atomic_write(path, lambda f: f.write(text))


def remove_temp_files(*folders: str) -> list[str]:
    """Delete the leftovers of killed writes (``.tmp-*`` files, and the fixed ``*.tmp`` names of older versions)
    in ``folders``; returns the removed paths. Only call this while holding the folder's run lock."""
    removed = []
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if (name.startswith(TEMP_PREFIX) or name in _OLD_TEMP_NAMES) and os.path.isfile(path):
                os.remove(path)
                removed.append(path)
    return removed


def describe_os_error(e: OSError) -> str | None:
    """'read-only file system' / 'no space left on device' / ... for errors that mean the folder cannot take
    writes; None for other errors."""
    return _NOT_WRITABLE.get(e.errno) or _FULL.get(e.errno)


@contextlib.contextmanager
def output_errors(folder: str, kept: Callable[[], str] | str = "") -> Iterator[None]:
    """Turn a write that fails because ``folder`` is read-only, not ours or full into an :class:`OutputError`
    saying what happened, what is intact (``kept``) and what to do."""
    try:
        yield
    except OutputError:
        raise
    except OSError as e:
        what = describe_os_error(e)
        if what is None:
            raise
        where = e.filename or folder
        kept_text = kept() if callable(kept) else kept
        if e.errno in _FULL:
            fix = f"free space on the disk holding {folder} (or choose another out_dir)"
        else:
            fix = f"make {folder} writable, or choose a writable folder with out_dir=... (or name=...)"
        raise OutputError(
            f"cannot write {where}: {what}. {kept_text + ' ' if kept_text else ''}Fix: {fix}, then run the "
            "same command again (an interrupted run continues with `vrm-train resume <run dir>`).",
        ) from e
