"""One process per run folder: an exclusive ``flock`` on ``<run_dir>/run.lock`` for the run's life.

The kernel releases an ``flock`` when its process ends in any way (``kill -9`` included),
so a crashed run never leaves its folder locked: ``--resume`` can continue it at once.
The lock file holds the pid, host and start time of the process that holds it, for the
message a second process gets (one line, :class:`RunFolderInUseError`). The file itself
stays after the run (an unlocked file means nothing).
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time

from tusimple_duc.errors import OutputError

LOCK_NAME = "run.lock"


class RunFolderInUseError(OutputError):
    """Another live process trains in this run folder."""


class RunLock:
    """The held lock of one run folder; :meth:`release` (or process exit) frees it."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd = fd

    def release(self) -> None:
        """Unlock and close (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = -1


def _holder(fd: int) -> str:
    """``process PID on HOST (started TIME)`` from the lock file's record."""
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"process {record['pid']} on {record['host']} (started {record['started']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"  # it holds the lock but has not written its record yet


def acquire_run_lock(run_dir: str) -> RunLock:
    """Lock ``run_dir`` for this process; raises :class:`RunFolderInUseError` naming the
    process that holds it, or :class:`OutputError` if the lock file cannot be created."""
    path = os.path.join(run_dir, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise OutputError(f"{path}: cannot create the run lock ({err.strerror or err})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunFolderInUseError(f"{run_dir}: in use by {holder}, which is training in it; wait for it to "
                                  f"end or stop it (a run folder belongs to one run at a time)") from None
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
    os.fsync(fd)
    return RunLock(path, fd)
