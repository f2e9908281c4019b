"""Where ``test.py --images`` writes: a folder of its own, never another run's.

With ``--out`` the folder given (new or empty); without, a new folder beside the config's
``result_dir`` named ``<result_dir>-images-<UTC time>`` (``-2``, ``-3``, ... when two runs start
in the same second). The folder is created here, before any work, so two runs never share one.
"""
from __future__ import annotations

import os
import time
from typing import Optional

from tusimple_duc.errors import OutputError
from tusimple_duc.io.atomic import ensure_writable_dir


def images_output_dir(result_dir: str, out: Optional[str] = None, now: Optional[float] = None) -> str:
    """The output folder of an ``--images`` run, created (empty) and checked writable.

    Parameters
    ----------
    result_dir : the config's ``[model] result_dir`` (the default folder is created beside it).
    out : the ``--out`` folder, or None.
    now : the time stamped into the default name (seconds since the epoch; None: now).

    Raises
    ------
    OutputError : ``out`` already holds files, or the folder cannot be created or written.
    """
    if out:
        if os.path.isdir(out) and os.listdir(out):
            raise OutputError(f"--out {out}: the folder already holds files (another run's outputs?); "
                              f"give a new or empty folder")
        ensure_writable_dir(out, "--out")
        return out
    base = os.path.normpath(result_dir or "results")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    stem = f"{base}-images-{stamp}"
    ensure_writable_dir(os.path.dirname(stem) or ".", "[model] result_dir's parent")
    for attempt in range(1, 1000):
        folder = stem if attempt == 1 else f"{stem}-{attempt}"
        try:
            os.mkdir(folder)
        except FileExistsError:
            continue
        return folder
    raise OutputError(f"{stem}: 999 folders of that name exist already; give --out")
