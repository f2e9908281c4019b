"""Atomic file writes: write to a temporary file in the target folder, then rename.

A reader never sees a half-written checkpoint, PNG or JSON file, and an
interrupted write leaves the previous version intact. Every write is durable once
the function returns: the data is fsync'ed before the rename and the folder after it
(so the new name survives a power loss).

Temporary files are named ``.<name>.<8 random characters>.tmp`` (:func:`atomic_open`)
or ``.<stem>.<8 random characters>.tmp<ext>`` (:func:`atomic_write_with`, keeping the
extension for writers that sniff it); a process killed mid-write leaves one behind,
which :func:`temporary_target` recognises.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from typing import IO, Any, Callable, Iterator, List, Optional

from tusimple_duc.errors import OutputError

#: ``tempfile.mkstemp``'s random part (8 characters of ``[a-z0-9_]``), then ``.tmp``.
_TEMPORARY_NAME = re.compile(r"^\.(?P<stem>.+)\.[a-z0-9_]{8}\.tmp(?P<ext>\.[^.]+)?$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_path(path: str, directory: bool = False) -> None:
    """fsync an existing file or folder by name."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp_path: str, path: str) -> None:
    """Give the temporary file the permissions of a normally created file, rename it onto
    ``path`` and fsync the folder so that the rename is durable."""
    os.chmod(tmp_path, 0o666 & ~_umask())
    os.replace(tmp_path, path)
    _fsync_path(os.path.dirname(os.path.abspath(path)), directory=True)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp_path, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        raise _naming(err, path, tmp_path)


def _naming(err: BaseException, path: str, tmp_path: str) -> BaseException:
    """An ``OSError`` that names no file (a failed ``write``: full disk, quota) or the temporary
    file, as the same error naming ``path``; any other exception unchanged."""
    if isinstance(err, OSError) and err.errno is not None and err.filename in (None, tmp_path):
        return type(err)(err.errno, err.strerror, path)
    return err


def atomic_write_with(path: str, writer: Callable[[str], Any]) -> None:
    """Call ``writer(tmp_path)`` (a function that writes a whole file), then rename onto ``path``.

    For libraries that only write to a file name (``mx.nd.save``, ``cv2.imwrite``,
    ``Block.export``). The temporary name keeps the extension of ``path`` so that
    extension-sniffing writers pick the right format. The written data is fsync'ed
    before the rename.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    stem, ext = os.path.splitext(base)
    fd, tmp_path = tempfile.mkstemp(prefix="." + stem + ".", suffix=".tmp" + ext, dir=folder)
    os.close(fd)
    try:
        writer(tmp_path)
        _fsync_path(tmp_path)
        _publish(tmp_path, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        raise _naming(err, path, tmp_path)


def temporary_target(name: str) -> Optional[str]:
    """The file name a temporary file of this module was going to become, e.g.
    ``.run-0003.k2j4x_a9.tmp.params`` -> ``run-0003.params``; None for any other name."""
    match = _TEMPORARY_NAME.match(name)
    if match is None:
        return None
    return match.group("stem") + (match.group("ext") or "")


def remove_temporaries(folder: str) -> List[str]:
    """Delete the temporary files interrupted writes left in ``folder`` and its subfolders
    (:func:`temporary_target` names); returns their paths, sorted."""
    removed = []
    for parent, _, names in os.walk(folder):
        for name in names:
            if temporary_target(name) is not None:
                path = os.path.join(parent, name)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                    removed.append(path)
    return sorted(removed)


def ensure_writable_dir(path: str, what: str) -> None:
    """Create folder ``path`` if needed and check that a file can be created in it.

    ``what`` names the setting in the message (e.g. ``"[model] model_dir"``). Raises
    :class:`OutputError` (one line) when ``path`` or one of its parents is a file, or the
    folder cannot be created or written (permissions, read-only or immutable folder).
    Call it before any long work whose results go there.
    """
    folder = path or "."
    parent = os.path.abspath(folder)
    while not os.path.exists(parent) and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
    if os.path.exists(parent) and not os.path.isdir(parent):
        where = "is a file" if parent == os.path.abspath(folder) else f"is under {parent}, which is a file"
        raise OutputError(f"{what} {folder}: {where}, not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        reason = err.strerror or errno.errorcode.get(err.errno or 0, type(err).__name__)
        raise OutputError(f"{what} {folder}: cannot write there ({reason})") from None


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_json(path: str, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_write_image(path: str, array: Any) -> None:
    """Write an image array in OpenCV's channel order (BGR, grey, 16-bit grey) atomically;
    the format (PNG, JPEG) follows ``path``'s extension.

    The image is encoded in memory (``cv2.imencode``) and written by Python, so a full disk is
    the system's ``OSError`` (``ENOSPC``) naming ``path``, not a libpng "Write Error". Raises
    ``OSError`` naming ``path`` when OpenCV cannot encode it or the file cannot be written.
    """
    import cv2  # deferred: the rest of this module needs only the standard library
    import numpy as np

    try:
        encoded, data = cv2.imencode(os.path.splitext(path)[1], np.ascontiguousarray(array))
    except cv2.error as error:
        reason = str(error).strip().splitlines()[-1]
        raise OSError(f"{path}: OpenCV could not encode the image ({reason})") from None
    if not encoded:
        raise OSError(f"{path}: OpenCV could not encode the image")
    with atomic_open(path, "wb") as handle:
        handle.write(data)
