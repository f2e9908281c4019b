"""Where a run writes: ``<model_dir>/<save_model_prefix>/<YYYY_MM_DD_HH:MM:SS>/``.

The original solver (``train/solver.py``) makes, for every run, the folder
``model_dir/<save_model_prefix>/<start time>/`` (``datetime.now()`` formatted
``%Y_%m_%d_%H:%M:%S``, local time) and writes into it ``<prefix>-symbol.json``,
``<prefix>-%04d.params``, the config (``train_<start time>.cfg``) and the log
(``<prefix>_<start time>.log``). This module names those folders and files:

* :func:`create_run_dir` makes a new run folder with ``os.mkdir`` (atomic, never an existing
  one): two runs started in the same second get ``<time>`` and ``<time>-2``;
* :func:`run_dirs` lists the run folders of a prefix, oldest first (by name: start time,
  then the ``-N`` suffix); :func:`newest_run_dir` is the one ``--resume`` continues.
"""
from __future__ import annotations

import errno
import itertools
import os
import re
import time
from typing import List, Optional, Tuple

from tusimple_duc.errors import CheckpointError, OutputError
from tusimple_duc.io.atomic import ensure_writable_dir

#: ``datetime.strftime`` format of a run folder's name (the original solver's).
RUN_STAMP_FORMAT = "%Y_%m_%d_%H:%M:%S"
_RUN_NAME = re.compile(r"^(?P<stamp>\d{4}_\d{2}_\d{2}_\d{2}:\d{2}:\d{2})(?:-(?P<index>\d+))?$")


def prefix_folder(model_dir: str, save_model_prefix: str) -> str:
    """``<model_dir>/<save_model_prefix>``: the folder holding every run of a prefix."""
    return os.path.join(model_dir, save_model_prefix)


def run_prefix(run_dir: str, save_model_prefix: str) -> str:
    """``<run_dir>/<save_model_prefix>``: the prefix of the run's checkpoint files."""
    return os.path.join(run_dir, save_model_prefix)


def config_copy_path(run_dir: str) -> str:
    """``<run_dir>/train_<run folder name>.cfg``: the config the run trains with."""
    return os.path.join(run_dir, f"train_{os.path.basename(os.path.normpath(run_dir))}.cfg")


def log_path(run_dir: str, save_model_prefix: str) -> str:
    """``<run_dir>/<save_model_prefix>_<run folder name>.log``: the run's log."""
    return os.path.join(run_dir, f"{save_model_prefix}_{os.path.basename(os.path.normpath(run_dir))}.log")


def is_run_dir_name(name: str) -> bool:
    """True for a run folder name (``2026_12_06_01:02:03`` or ``2026_12_06_01:02:03-2``)."""
    return _RUN_NAME.match(name) is not None


def _order(name: str) -> Tuple[str, int]:
    match = _RUN_NAME.match(name)
    assert match is not None
    return match.group("stamp"), int(match.group("index") or 1)


def create_run_dir(model_dir: str, save_model_prefix: str, now: Optional[float] = None) -> str:
    """Make a new, empty run folder for a run starting at ``now`` (seconds since the epoch,
    default: the current time) and return its path.

    Raises :class:`OutputError` when ``model_dir`` or the prefix folder cannot be created or
    written (a file in its place, read-only, permissions).
    """
    ensure_writable_dir(model_dir, "[model] model_dir")
    parent = prefix_folder(model_dir, save_model_prefix)
    ensure_writable_dir(parent, "[model] model_dir/save_model_prefix")
    stamp = time.strftime(RUN_STAMP_FORMAT, time.localtime(now))
    for index in itertools.count(1):
        path = os.path.join(parent, stamp if index == 1 else f"{stamp}-{index}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
        except OSError as err:
            reason = err.strerror or errno.errorcode.get(err.errno or 0, type(err).__name__)
            raise OutputError(f"{path}: cannot create the run folder ({reason})") from None
    raise AssertionError("unreachable")


def run_dirs(model_dir: str, save_model_prefix: str) -> List[str]:
    """The run folders of a prefix, oldest first (empty if there is none)."""
    parent = prefix_folder(model_dir, save_model_prefix)
    if not os.path.isdir(parent):
        return []
    names = [name for name in os.listdir(parent)
             if is_run_dir_name(name) and os.path.isdir(os.path.join(parent, name))]
    return [os.path.join(parent, name) for name in sorted(names, key=_order)]


def newest_run_dir(model_dir: str, save_model_prefix: str) -> str:
    """The most recently started run folder of a prefix (:class:`CheckpointError` if none)."""
    found = run_dirs(model_dir, save_model_prefix)
    if not found:
        parent = prefix_folder(model_dir, save_model_prefix)
        raise CheckpointError(f"{parent}: no run folder <YYYY_MM_DD_HH:MM:SS> to resume "
                              f"(run without --resume first, or give the folder: --resume PATH)")
    return found[-1]
