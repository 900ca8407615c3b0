"""One process per run directory: an exclusive lock held for the life of the training process.

The lock is ``flock`` on ``<run>/.lock``; the kernel drops it when its holder exits in any way (kill -9
included), so a dead process never blocks its run: the next start takes the lock over and says whose it
was. The file records the holder (PID, host, start time) for the message a second process gets. Only one
rank of a distributed run (rank 0) takes it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import os
import socket
import sys

LOCK_NAME = ".lock"


class RunLockedError(RuntimeError):
    """Another live process holds the run directory; the message names it (PID, host)."""


def _holder_text(fd: int) -> str:
    try:
        raw = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return raw


def _fields(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


def _describe(text: str) -> str:
    fields = _fields(text)
    if "pid" not in fields:
        return "an unknown process"
    since = f", since {fields['since']}" if "since" in fields else ""
    return f"process {fields['pid']} on host {fields.get('host', '?')}{since}"


def _exited_here(text: str) -> bool:
    """Whether the recorded holder ran on this host and has exited (its forked workers may hold the lock)."""
    fields = _fields(text)
    if fields.get("host") != socket.gethostname() or not fields.get("pid", "").isdigit():
        return False
    try:
        os.kill(int(fields["pid"]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class RunLock:
    """``with RunLock(folder):`` or ``acquire()``/``release()``; raises :class:`RunLockedError` when held."""

    def __init__(self, folder: str):
        self.folder = os.path.abspath(folder)
        self.path = os.path.join(self.folder, LOCK_NAME)
        self.fd: int | None = None
        self.took_over: str | None = None  # the dead holder whose stale lock file was taken over
        self.created = False  # the folder did not exist: release removes it again if it is still empty

    def acquire(self) -> RunLock:
        if self.fd is not None:
            return self
        while True:
            if not os.path.isdir(self.folder):
                os.makedirs(self.folder, exist_ok=True)
                self.created = True
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # the folder was removed by a holder releasing it: create it again
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = _holder_text(fd)
                os.close(fd)
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) and _exited_here(holder):
                    raise RunLockedError(
                        f"run directory {self.folder} is still locked although its holder, "
                        f"{_describe(holder)}, has exited: processes it started (data-loader workers) still "
                        "hold the lock and end within seconds. Run the command again shortly."
                    ) from None
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RunLockedError(
                        f"run directory {self.folder} is in use by {_describe(holder)} (lock file "
                        f"{self.path}). Two processes must never write one run: wait for it to finish, stop "
                        "it, or choose another name=... / out_dir=...; to continue that run after it has "
                        "stopped, use `vrm-train resume <run dir>`."
                    ) from None
                if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                    print(
                        f"warning: the file system of {self.folder} does not support locks; nothing stops "
                        "a second process from writing this run directory",
                        file=sys.stderr,
                    )
                    return self
                raise
            # A releasing holder unlinks the file before unlocking: make sure we locked the file at the path.
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _holder_text(fd)
        if previous:
            self.took_over = _describe(previous)
        since = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid={os.getpid()} host={socket.gethostname()} since={since}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still holding it (see acquire)
        os.close(self.fd)
        self.fd = None
        if self.created:
            with contextlib.suppress(OSError):
                os.rmdir(self.folder)  # only succeeds when nothing was written into it

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
