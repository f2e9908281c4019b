"""Decoding dataset images and label maps, with every defect reported as a DataError.

An image must be an 8-bit 3-channel PNG or JPEG; a label map must be an 8-bit
single-channel PNG (Cityscapes ids, trainIds), a palette or grayscale PNG of VOC
class indices, or a KITTI road ground-truth RGB PNG in its three colours. A missing,
empty, truncated or corrupt file, a wrong bit depth or channel count, or a value
outside the dataset's table is a :class:`~tusimple_duc.errors.DataError` whose one-line
message names the file, the problem and (when given) the list line. PNG label maps read
with PIL go through the one PNG reader, :func:`tusimple_duc.data.png.read_png`.

Truncation: OpenCV returns ``None`` for a truncated or corrupt PNG (libpng checks the
CRCs and reads up to ``IEND``), but decodes a truncated JPEG with a grey tail and only a
warning, so a JPEG must end with its end-of-image marker before it is decoded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Tuple

import cv2
import numpy as np
from PIL import Image

from tusimple_duc.data import labels as tables
from tusimple_duc.data.png import PNG_SIGNATURE, read_bytes, read_png, where_suffix
from tusimple_duc.errors import DataError

JPEG_SIGNATURE = b"\xff\xd8"
JPEG_END = b"\xff\xd9"
#: How far from the end of a JPEG file its end-of-image marker is looked for (padding, trailers).
JPEG_END_SEARCH = 4096


def check_complete(data: np.ndarray, path: str, what: str, where: str = "") -> None:
    """Reject a file that is neither PNG nor JPEG, or a JPEG without its end-of-image marker."""
    head = data[:8].tobytes()
    if head.startswith(PNG_SIGNATURE):
        return
    if head.startswith(JPEG_SIGNATURE):
        if JPEG_END not in data[-JPEG_END_SEARCH:].tobytes():
            raise DataError(f"{path}: truncated JPEG {what} (no end-of-image marker){where_suffix(where)}")
        return
    raise DataError(f"{path}: {what} is not a PNG or JPEG file{where_suffix(where)}")


def decode_with_opencv(path: str, what: str, where: str = "") -> np.ndarray:
    """Decode an image file unchanged (no colour conversion, no bit-depth change)."""
    data = read_bytes(path, what, where)
    check_complete(data, path, what, where)
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise DataError(f"{path}: cannot decode {what} (truncated or corrupt file){where_suffix(where)}")
    return decoded


def _describe(array: np.ndarray) -> str:
    channels = 1 if array.ndim == 2 else array.shape[2]
    return f"{array.dtype.itemsize * 8}-bit with {channels} channel{'s' if channels != 1 else ''}"


def read_bgr_image(path: str, where: str = "") -> np.ndarray:
    """An 8-bit colour image as (H, W, 3) uint8 in OpenCV's BGR order."""
    image = decode_with_opencv(path, "image", where)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DataError(f"{path}: image is {_describe(image)}, expected 8-bit RGB{where_suffix(where)}")
    return image


def read_image_size(path: str, where: str = "") -> Tuple[int, int]:
    """``(height, width)`` of an image file from its header (nothing is decoded)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise DataError(f"{path}: file not found{where_suffix(where)}") from None
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError ...
        raise DataError(f"{path}: cannot read image header ({exc}){where_suffix(where)}") from None
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
        raise DataError(f"{path}: label values {shown} are not in the {table}{where_suffix(where)}")


def _single_channel_label(path: str, where: str = "") -> np.ndarray:
    """An 8-bit single-channel label PNG (Cityscapes ids, training ids) as (H, W) uint8."""
    label = decode_with_opencv(path, "label", where)
    if label.dtype != np.uint8 or label.ndim != 2:
        raise DataError(f"{path}: label is {_describe(label)}, expected 8-bit single-channel{where_suffix(where)}")
    return label


def read_index_png(path: str, where: str = "") -> np.ndarray:
    """The palette INDEX (not the colour) of a palette PNG, or the value of an 8-bit grayscale PNG, (H, W) uint8."""
    return read_png(path, ("P", "L"), "label", where)


#: KITTI road ground-truth colours (RGB) that may appear: road, not road, don't care.
KITTI_ALLOWED_COLOURS: Tuple[Tuple[int, int, int], ...] = tuple(tables.KITTI_GT_COLORS.values())


def read_kitti_road_gt(path: str, where: str = "") -> np.ndarray:
    """A ``gt_image_2/*_road_*.png`` file as labels (H, W) uint8: 1 road, 0 not road, 255 don't care."""
    gt = decode_with_opencv(path, "label", where)
    if gt.dtype != np.uint8 or gt.ndim != 3 or gt.shape[2] != 3:
        raise DataError(f"{path}: KITTI road ground truth is {_describe(gt)}, expected 8-bit RGB"
                        f"{where_suffix(where)}")
    rgb = gt[:, :, ::-1]
    code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    allowed = np.array([(r << 16) | (g << 8) | b for r, g, b in KITTI_ALLOWED_COLOURS])
    bad = ~np.isin(code, allowed)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        colour = tuple(int(v) for v in rgb[row, col])
        raise DataError(f"{path}: colour {colour} at row {row}, column {col} is not one of the KITTI road "
                        f"colours {list(KITTI_ALLOWED_COLOURS)}{where_suffix(where)}")
    return tables.kitti_gt_to_labels(rgb)


@dataclass(frozen=True)
class LabelFormat:
    """How the label files of one dataset are decoded and mapped to training ids.

    Attributes
    ----------
    table_name : how the valid values are described in error messages.
    read_raw : ``read_raw(path, where)`` -> the raw label map (H, W) uint8, one-line DataError on a bad file.
    lut : uint8[256], raw value -> training id (255 = ignored).
    valid : bool[256], the raw values that may appear.
    """

    table_name: str
    read_raw: Callable[[str, str], np.ndarray]
    lut: np.ndarray
    valid: np.ndarray


#: The label formats of ``[data] convert_label = True``, by ``[data] dataset``.
LABEL_FORMATS: Dict[str, LabelFormat] = {
    "cityscapes": LabelFormat("Cityscapes labelId table (0..33)", _single_channel_label,
                              tables.CITYSCAPES_ID_TO_TRAINID, _valid_mask(sorted(tables.CITYSCAPES_VALID_IDS))),
    "kitti": LabelFormat("KITTI road colours", read_kitti_road_gt, np.arange(256, dtype=np.uint8),
                         _valid_mask([0, 1, tables.IGNORE_LABEL])),
    "voc": LabelFormat("VOC index table (0..20, 255)", read_index_png, np.arange(256, dtype=np.uint8),
                       _valid_mask(list(range(tables.VOC_NUM_CLASSES)) + [tables.IGNORE_LABEL])),
}
#: ``[data] convert_label`` modes: a dataset's label format, or ``'none'`` (the files hold training ids).
LABEL_MODES = tuple(LABEL_FORMATS) + ("none",)


@dataclass(frozen=True)
class LabelCodec:
    """How the label files of a training list are read and mapped to training ids.

    Attributes
    ----------
    mode : a key of :data:`LABEL_FORMATS` (``'cityscapes'``: ``*_labelIds.png``, ids 0..33 ->
        trainIds; ``'kitti'``: ``gt_image_2`` colours -> 1 road, 0 not road, 255 don't care;
        ``'voc'``: palette or grayscale PNG of indices 0..20, 255 boundary) or ``'none'``
        (8-bit single-channel training ids ``0..num_classes-1`` and ``ignore_label``).
    num_classes : number of training classes (checked in mode ``'none'``).
    ignore_label : the ignored training id written for void pixels and padding.
    """

    mode: str
    num_classes: int = tables.CITYSCAPES_NUM_CLASSES
    ignore_label: int = tables.IGNORE_LABEL
    label_format: LabelFormat = field(init=False, repr=False, compare=False)
    lut: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in LABEL_MODES:
            raise ValueError(f"label mode must be one of {LABEL_MODES}, got {self.mode!r}")
        if self.mode == "none":
            label_format = LabelFormat(
                f"training ids 0..{self.num_classes - 1} and ignore label {self.ignore_label}",
                _single_channel_label, np.arange(256, dtype=np.uint8),
                _valid_mask(list(range(self.num_classes)) + [self.ignore_label]))
            lut = label_format.lut.copy()
        else:
            label_format = LABEL_FORMATS[self.mode]
            lut = label_format.lut.copy()
            lut[lut == tables.IGNORE_LABEL] = self.ignore_label
        lut.flags.writeable = False
        object.__setattr__(self, "label_format", label_format)
        object.__setattr__(self, "lut", lut)

    @property
    def valid(self) -> np.ndarray:
        """bool[256]: the raw label values that may appear."""
        return self.label_format.valid

    @property
    def table_name(self) -> str:
        """How the valid values are described in error messages."""
        return self.label_format.table_name

    def read(self, path: str, where: str = "") -> np.ndarray:
        """The validated raw label map (H, W) uint8; map it to training ids with ``lut``."""
        label = self.label_format.read_raw(path, where)
        check_label_values(label, self.valid, path, self.table_name, where)
        return label
