"""Atomic file writes: write to a temporary file in the target folder, then rename.

A reader never sees a half-written checkpoint, PNG or JSON file, and an
interrupted write leaves the previous version intact.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import IO, Any, Callable, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(tmp_path: str, path: str) -> None:
    """Give the temporary file the permissions of a normally created file, then rename it."""
    os.chmod(tmp_path, 0o666 & ~_umask())
    os.replace(tmp_path, path)


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
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        raise


def atomic_write_with(path: str, writer: Callable[[str], Any]) -> None:
    """Call ``writer(tmp_path)`` (a function that writes a whole file), then rename onto ``path``.

    For libraries that only write to a file name (``mx.nd.save``, ``cv2.imwrite``,
    ``Block.export``). The temporary name keeps the extension of ``path`` so that
    extension-sniffing writers pick the right format.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    stem, ext = os.path.splitext(base)
    fd, tmp_path = tempfile.mkstemp(prefix="." + stem + ".", suffix=".tmp" + ext, dir=folder)
    os.close(fd)
    try:
        writer(tmp_path)
        _publish(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        raise


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

    Raises ``OSError`` naming ``path`` when OpenCV cannot encode or write it.
    """
    import cv2  # deferred: the rest of this module needs only the standard library
    import numpy as np

    contiguous = np.ascontiguousarray(array)

    def write(tmp_path: str) -> None:
        try:
            written = cv2.imwrite(tmp_path, contiguous)
        except cv2.error as error:
            reason = str(error).strip().splitlines()[-1]
            raise OSError(f"{path}: OpenCV could not write the image ({reason})") from None
        if not written:
            raise OSError(f"{path}: OpenCV could not write the image")

    atomic_write_with(path, write)
