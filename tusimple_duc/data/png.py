"""The one PNG reader and the one palette-PNG writer of the package.

:func:`read_png` reads every label-like PNG (Cityscapes labelIds and instanceIds, VOC
palette or index maps, KITTI road ground truth, predictions) with the same checks: the
file exists, is not empty, is a PNG, decodes completely (PIL checks the chunk CRCs and
stops at a truncated file) and has one of the accepted PIL modes. Every defect is one
line naming the file, raised as the error class the caller gives (``DataError`` for
dataset files, ``EvaluationError`` for the evaluators).
"""
from __future__ import annotations

import io
from typing import Sequence, Type

import numpy as np
from PIL import Image, ImageFile

from tusimple_duc.errors import DataError, DUCError
from tusimple_duc.io.atomic import atomic_open

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: How PIL modes are named in error messages.
MODE_NAMES = {
    "P": "palette (mode P)",
    "RGB": "3-channel colour (mode RGB)",
    "RGBA": "4-channel colour (mode RGBA)",
    "LA": "grey + alpha (mode LA)",
    "1": "1-bit (mode 1)",
    "L": "8-bit single-channel (mode L)",
    "I;16": "16-bit single-channel (mode I;16)",
    "I": "32-bit single-channel (mode I)",
}


def where_suffix(where: str) -> str:
    """``" (<where>)"`` for a non-empty list position, else ``""``: the tail of every message."""
    return f" ({where})" if where else ""


def read_bytes(path: str, what: str, where: str = "", error: Type[DUCError] = DataError) -> np.ndarray:
    """The whole file as a uint8 array (N,); a missing, unreadable or empty file is ``error``."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found{where_suffix(where)}") from None
    except (IsADirectoryError, PermissionError, OSError) as exc:
        raise error(f"{path}: cannot read {what} file ({exc.strerror or exc}){where_suffix(where)}") from None
    if data.size == 0:
        raise error(f"{path}: {what} file is empty{where_suffix(where)}")
    return data


def _mode_name(mode: str) -> str:
    return MODE_NAMES.get(mode, f"mode {mode}")


def read_png(path: str, modes: Sequence[str], what: str, where: str = "",
             error: Type[DUCError] = DataError) -> np.ndarray:
    """Decode a PNG whose PIL mode is one of ``modes`` (a palette PNG gives its indices, not colours).

    Parameters
    ----------
    path : the file.
    modes : accepted PIL modes, e.g. ``("L",)`` for labelIds, ``("P", "L")`` for VOC,
        ``("I;16", "I")`` for instanceIds, ``("RGB",)`` for KITTI road ground truth.
    what : what the file should be, for messages (``"label"``, ``"VOC prediction"``).
    where : list position for messages (``"train.lst line 3"``), or ``""``.
    error : the DUCError subclass raised.

    Returns
    -------
    (H, W) array for single-channel and palette modes (uint8, or uint16 / int32 for I;16 / I),
    (H, W, C) uint8 for colour modes.
    """
    data = read_bytes(path, what, where, error)
    if not data[:8].tobytes().startswith(PNG_SIGNATURE):
        raise error(f"{path}: {what} is not a PNG file{where_suffix(where)}")
    truncated_allowed = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # GluonCV's data package sets it True on import
    try:
        with Image.open(io.BytesIO(data.tobytes())) as image:
            if image.mode not in modes:
                accepted = " or ".join(_mode_name(mode) for mode in modes)
                raise error(f"{path}: {what} is a {_mode_name(image.mode).replace(' (', ' image (', 1)}; "
                            f"expected {accepted}{where_suffix(where)}")
            image.load()
            return np.array(image)
    except DUCError:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, zlib errors ...
        raise error(f"{path}: cannot decode {what} ({exc}){where_suffix(where)}") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated_allowed


def write_palette_png(path: str, indices: np.ndarray, palette: np.ndarray) -> None:
    """Write class indices (H, W) uint8 as a palette PNG (mode P) with ``palette`` (256, 3) uint8 RGB, atomically."""
    image = Image.fromarray(np.asarray(indices, dtype=np.uint8), mode="P")
    image.putpalette(np.asarray(palette, dtype=np.uint8).reshape(-1).tolist())
    with atomic_open(path, "wb") as handle:
        image.save(handle, format="PNG")
