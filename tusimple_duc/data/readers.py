"""Decoding dataset images and label maps, with every defect reported as a DataError.

An image must be an 8-bit 3-channel PNG or JPEG; a label map must be an 8-bit
single-channel PNG (Cityscapes ids, trainIds), a palette or grayscale PNG of VOC
class indices, or a KITTI road ground-truth RGB PNG in its three colours. A missing,
empty, truncated or corrupt file, a wrong bit depth or channel count, or a value
outside the dataset's table is a :class:`~tusimple_duc.errors.DataError` whose one-line
message names the file, the problem and (when given) the list line.

Truncation: OpenCV returns ``None`` for a truncated or corrupt PNG (libpng checks the
CRCs and reads up to ``IEND``), but decodes a truncated JPEG with a grey tail and only a
warning, so a JPEG must end with its end-of-image marker before it is decoded.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Tuple

import cv2
import numpy as np
from PIL import Image

from tusimple_duc.data import labels as tables
from tusimple_duc.errors import DataError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8"
JPEG_END = b"\xff\xd9"
#: How far from the end of a JPEG file its end-of-image marker is looked for (padding, trailers).
JPEG_END_SEARCH = 4096

LABEL_MODES = ("cityscapes", "kitti", "voc", "none")


def _context(where: str) -> str:
    return f" ({where})" if where else ""


def read_bytes(path: str, what: str, where: str = "") -> np.ndarray:
    """The whole file as a uint8 array; a missing, unreadable or empty file is a DataError."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} file not found{_context(where)}") from None
    except (IsADirectoryError, PermissionError, OSError) as exc:
        raise DataError(f"{path}: cannot read {what} file ({exc.strerror or exc}){_context(where)}") from None
    if data.size == 0:
        raise DataError(f"{path}: {what} file is empty{_context(where)}")
    return data


def check_complete(data: np.ndarray, path: str, what: str, where: str = "") -> None:
    """Reject a file that is neither PNG nor JPEG, or a JPEG without its end-of-image marker."""
    head = data[:8].tobytes()
    if head.startswith(PNG_SIGNATURE):
        return
    if head.startswith(JPEG_SIGNATURE):
        if JPEG_END not in data[-JPEG_END_SEARCH:].tobytes():
            raise DataError(f"{path}: truncated JPEG {what} (no end-of-image marker){_context(where)}")
        return
    raise DataError(f"{path}: {what} is not a PNG or JPEG file{_context(where)}")


def decode_with_opencv(path: str, what: str, where: str = "") -> np.ndarray:
    """Decode an image file unchanged (no colour conversion, no bit-depth change)."""
    data = read_bytes(path, what, where)
    check_complete(data, path, what, where)
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise DataError(f"{path}: cannot decode {what} (truncated or corrupt file){_context(where)}")
    return decoded


def _describe(array: np.ndarray) -> str:
    channels = 1 if array.ndim == 2 else array.shape[2]
    return f"{array.dtype.itemsize * 8}-bit with {channels} channel{'s' if channels != 1 else ''}"


def read_bgr_image(path: str, where: str = "") -> np.ndarray:
    """An 8-bit colour image as (H, W, 3) uint8 in OpenCV's BGR order."""
    image = decode_with_opencv(path, "image", where)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"{path}: image is {_describe(image)}, expected 8-bit RGB{_context(where)}")
    return image


def read_image_size(path: str, where: str = "") -> Tuple[int, int]:
    """``(height, width)`` of an image file from its header (nothing is decoded)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise DataError(f"{path}: file not found{_context(where)}") from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError ...
        raise DataError(f"{path}: cannot read image header ({exc}){_context(where)}") from None
    return height, width


def read_rgb_image(path: str, where: str = "") -> np.ndarray:
    """An 8-bit colour image as (H, W, 3) uint8 RGB."""
    return cv2.cvtColor(read_bgr_image(path, where), cv2.COLOR_BGR2RGB)


def _valid_mask(values) -> np.ndarray:
    mask = np.zeros(256, dtype=bool)
    mask[list(values)] = True
    return mask


def check_label_values(label: np.ndarray, valid: np.ndarray, path: str, table: str, where: str = "") -> None:
    """Every value of ``label`` (uint8) must be marked in ``valid`` (bool[256])."""
    top = int(label.max())
    if valid[: top + 1].all():
        return
    present = np.flatnonzero(np.bincount(label.ravel(), minlength=256))
    bad = [int(v) for v in present if not valid[v]]
    if bad:
        shown = ", ".join(str(v) for v in bad[:8]) + (", ..." if len(bad) > 8 else "")
        raise DataError(f"{path}: label values {shown} are not in the {table}{_context(where)}")


@dataclass(frozen=True)
class LabelCodec:
    """How the label files of a dataset are read and mapped to training ids.

    Attributes
    ----------
    mode : ``'cityscapes'`` (``*_labelIds.png``, ids 0..33 -> trainIds), ``'kitti'``
        (``gt_image_2`` colours -> 1 road, 0 not road, 255 don't care), ``'voc'``
        (palette or grayscale PNG of indices 0..20, 255 boundary) or ``'none'``
        (8-bit single-channel training ids ``0..num_classes-1`` and ``ignore_label``).
    num_classes : number of training classes (checked in mode ``'none'``).
    ignore_label : the ignored training id written for void pixels and padding.
    """

    mode: str
    num_classes: int = tables.CITYSCAPES_NUM_CLASSES
    ignore_label: int = tables.IGNORE_LABEL
    lut: np.ndarray = field(init=False, repr=False, compare=False)
    valid: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in LABEL_MODES:
            raise ValueError(f"label mode must be one of {LABEL_MODES}, got {self.mode!r}")
        if self.mode == "cityscapes":
            lut = tables.CITYSCAPES_ID_TO_TRAINID.copy()
            valid = _valid_mask(sorted(tables.CITYSCAPES_VALID_IDS))
        elif self.mode == "kitti":
            lut = np.arange(256, dtype=np.uint8)
            valid = _valid_mask([0, 1, tables.IGNORE_LABEL])
        elif self.mode == "voc":
            lut = np.arange(256, dtype=np.uint8)
            valid = _valid_mask(list(range(tables.VOC_NUM_CLASSES)) + [tables.IGNORE_LABEL])
        else:
            lut = np.arange(256, dtype=np.uint8)
            valid = _valid_mask(list(range(self.num_classes)) + [self.ignore_label])
        if self.mode != "none":
            lut[lut == tables.IGNORE_LABEL] = self.ignore_label
        lut.flags.writeable = False
        object.__setattr__(self, "lut", lut)
        object.__setattr__(self, "valid", valid)

    @property
    def table_name(self) -> str:
        """How the valid values are described in error messages."""
        return {
            "cityscapes": "Cityscapes labelId table (0..33)",
            "kitti": "KITTI road colours",
            "voc": "VOC index table (0..20, 255)",
            "none": f"training ids 0..{self.num_classes - 1} and ignore label {self.ignore_label}",
        }[self.mode]

    def read(self, path: str, where: str = "") -> np.ndarray:
        """The validated raw label map (H, W) uint8; map it to training ids with ``lut``."""
        if self.mode == "voc":
            label = read_index_png(path, where)
        elif self.mode == "kitti":
            label = read_kitti_road_gt(path, where)
        else:
            label = decode_with_opencv(path, "label", where)
            if label.dtype != np.uint8 or label.ndim != 2:
                raise DataError(f"{path}: label is {_describe(label)}, expected 8-bit single-channel"
                                f"{_context(where)}")
        check_label_values(label, self.valid, path, self.table_name, where)
        return label


def read_index_png(path: str, where: str = "") -> np.ndarray:
    """The palette INDEX (not the colour) of a palette PNG, or the value of an 8-bit grayscale PNG."""
    data = read_bytes(path, "label", where)
    check_complete(data, path, "label", where)
    try:
        with Image.open(io.BytesIO(data.tobytes())) as image:
            if image.mode not in ("P", "L"):
                raise DataError(f"{path}: label PNG has mode {image.mode}, expected a palette (P) or "
                                f"8-bit grayscale (L) index image{_context(where)}")
            image.load()
            return np.asarray(image, dtype=np.uint8)
    except DataError:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, zlib errors ...
        raise DataError(f"{path}: cannot decode label ({exc}){_context(where)}") from None


#: KITTI road ground-truth colours (RGB) that may appear: road, not road, don't care.
KITTI_ALLOWED_COLOURS: Tuple[Tuple[int, int, int], ...] = tuple(tables.KITTI_GT_COLORS.values())


def read_kitti_road_gt(path: str, where: str = "") -> np.ndarray:
    """A ``gt_image_2/*_road_*.png`` file as labels (H, W) uint8: 1 road, 0 not road, 255 don't care."""
    gt = decode_with_opencv(path, "label", where)
    if gt.dtype != np.uint8 or gt.ndim != 3 or gt.shape[2] != 3:
        raise DataError(f"{path}: KITTI road ground truth is {_describe(gt)}, expected 8-bit RGB{_context(where)}")
    rgb = gt[:, :, ::-1]
    code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    allowed = np.array([(r << 16) | (g << 8) | b for r, g, b in KITTI_ALLOWED_COLOURS])
    bad = ~np.isin(code, allowed)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        colour = tuple(int(v) for v in rgb[row, col])
        raise DataError(f"{path}: colour {colour} at row {row}, column {col} is not one of the KITTI road "
                        f"colours {list(KITTI_ALLOWED_COLOURS)}{_context(where)}")
    return tables.kitti_gt_to_labels(rgb)
