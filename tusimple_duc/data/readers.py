"""Decoding dataset images and label maps as the original did, with every defect reported as a DataError.

Images are decoded as the original's ``cv.imread(path)`` decoded them (OpenCV's default
``IMREAD_COLOR``): a PNG, JPEG, BMP or PBM/PGM/PPM file becomes (H, W, 3) uint8 BGR; a grey
image has its channel replicated, an alpha channel is dropped (no blending), a 16-bit image
is shifted to 8 bits (``v >> 8``), a palette image gives its colours, and a JPEG's EXIF
orientation is applied. :func:`read_image_header` tells from the header whether a file is
stored otherwise than as 8-bit colour, for the one warning per run that counts them.

Label maps are read as the original's ``np.array(Image.open(path))`` read them (PIL): an
8-bit grey or 1-bit PNG gives its values, a palette PNG its INDICES, a 16-bit grey PNG its
16-bit values; a colour label is refused (except KITTI road ground truth, decoded from its
three colours). Values: with ``convert_label`` a value outside the dataset's table becomes
``ignore_label`` (the original's ``replace_city_labels`` started from 255), counted for one
warning (:meth:`LabelCodec.outside_table`); without it, a value that is neither a training id
below ``label_num`` nor ``ignore_label`` is an error (a listed fix: the original trained on it).

A missing, empty, truncated or corrupt file, a folder, a refused kind of label, or a value
outside the training ids is a :class:`~tusimple_duc.errors.DataError` whose one-line message
names the file, the problem and (when given) the list line. Label maps read with PIL go
through the one PNG reader, :func:`tusimple_duc.data.png.read_png`.

Truncation: OpenCV returns ``None`` for a truncated or corrupt PNG (libpng checks the
CRCs and reads up to ``IEND``), but decodes a truncated JPEG with a grey tail and only a
warning, so a JPEG must end with its end-of-image marker before it is decoded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, Tuple

import cv2
import numpy as np
from PIL import Image

from tusimple_duc.data import labels as tables
from tusimple_duc.data.png import PNG_SIGNATURE, read_bytes, read_png, where_suffix
from tusimple_duc.errors import DataError

JPEG_SIGNATURE = b"\xff\xd8"
BMP_SIGNATURE = b"BM"
JPEG_END = b"\xff\xd9"
#: How far from the end of a JPEG file its end-of-image marker is looked for (padding, trailers).
JPEG_END_SEARCH = 4096


def is_pnm(head: bytes) -> bool:
    """True for the leading bytes of a PBM / PGM / PPM file (``P1`` .. ``P6`` then white space)."""
    return len(head) >= 3 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace()


def check_complete(data: np.ndarray, path: str, what: str, where: str = "") -> None:
    """Reject a file that is not PNG, JPEG, BMP or PNM, or a JPEG without its end-of-image marker."""
    head = data[:8].tobytes()
    if head.startswith(PNG_SIGNATURE) or head.startswith(BMP_SIGNATURE) or is_pnm(head):
        return
    if head.startswith(JPEG_SIGNATURE):
        if JPEG_END not in data[-JPEG_END_SEARCH:].tobytes():
            raise DataError(f"{path}: truncated JPEG {what} (no end-of-image marker){where_suffix(where)}")
        return
    raise DataError(f"{path}: {what} is not a PNG, JPEG, BMP or PPM file{where_suffix(where)}")


def decode_with_opencv(path: str, what: str, where: str = "", flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Decode an image file with OpenCV's ``flags`` (default: unchanged, no colour or bit-depth conversion)."""
    data = read_bytes(path, what, where)
    check_complete(data, path, what, where)
    decoded = cv2.imdecode(data, flags)
    if decoded is None:
        raise DataError(f"{path}: cannot decode {what} (truncated or corrupt file){where_suffix(where)}")
    return decoded


def _describe(array: np.ndarray) -> str:
    channels = 1 if array.ndim == 2 else array.shape[2]
    return f"{array.dtype.itemsize * 8}-bit with {channels} channel{'s' if channels != 1 else ''}"


def read_bgr_image(path: str, where: str = "") -> np.ndarray:
    """The image as ``cv2.imread(path)`` reads it: (H, W, 3) uint8 BGR (see the module docstring)."""
    return decode_with_opencv(path, "image", where, cv2.IMREAD_COLOR)


#: The pixel format of an image that ``cv2.imread`` takes as it is.
PLAIN_COLOUR = "8-bit colour"
#: PNG colour types (IHDR byte 25) by name.
PNG_COLOUR_TYPES = {0: "grey", 2: "colour", 3: "palette", 4: "grey + alpha", 6: "colour + alpha"}
#: PIL modes (the header of a JPEG, BMP or PNM file) by pixel format.
PIL_MODE_FORMATS = {"RGB": PLAIN_COLOUR, "L": "8-bit grey", "P": "palette", "RGBA": "colour + alpha",
                    "LA": "grey + alpha", "1": "1-bit", "I;16": "16-bit grey", "CMYK": "CMYK"}


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says.

    Attributes
    ----------
    height, width : pixels.
    pixel_format : how the pixels are stored (``"8-bit colour"``, ``"16-bit grey"``, ``"8-bit colour + alpha"``,
        ``"palette"``, ...).
    """

    height: int
    width: int
    pixel_format: str

    @property
    def converted(self) -> bool:
        """True when ``cv2.imread`` converts the pixels (anything but 8-bit colour)."""
        return self.pixel_format != PLAIN_COLOUR


def read_image_header(path: str, where: str = "") -> ImageHeader:
    """Size and pixel format of an image file from its header (nothing is decoded).

    Raises
    ------
    DataError
        The path is a folder, the file is missing, or its header cannot be read.
    """
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, not an image file{where_suffix(where)}")
    try:
        with open(path, "rb") as handle:
            head = handle.read(26)  # a PNG's signature and IHDR up to its colour type
            handle.seek(0)
            with Image.open(handle) as image:  # reads only as far as the header
                width, height = image.size
                mode = image.mode
    except FileNotFoundError:
        raise DataError(f"{path}: file not found{where_suffix(where)}") from None
    except Exception as exc:  # OSError, and PIL's OSError, SyntaxError, ValueError ...
        raise DataError(f"{path}: cannot read image header ({exc}){where_suffix(where)}") from None
    if head.startswith(PNG_SIGNATURE) and len(head) >= 26:  # IHDR: bit depth (byte 24), colour type (25)
        depth, colour_type = head[24], head[25]
        pixel_format = f"{depth}-bit {PNG_COLOUR_TYPES.get(colour_type, f'colour type {colour_type}')}"
        if colour_type == 3:
            pixel_format = "palette"
    else:
        pixel_format = PIL_MODE_FORMATS.get(mode, f"mode {mode}")
    return ImageHeader(height, width, pixel_format)


def read_image_size(path: str, where: str = "") -> Tuple[int, int]:
    """``(height, width)`` of an image file from its header (nothing is decoded)."""
    header = read_image_header(path, where)
    return header.height, header.width


def read_rgb_image(path: str, where: str = "") -> np.ndarray:
    """The image as ``cv2.imread(path)[:, :, ::-1]`` reads it: (H, W, 3) uint8 RGB."""
    return cv2.cvtColor(read_bgr_image(path, where), cv2.COLOR_BGR2RGB)


def _valid_mask(values) -> np.ndarray:
    mask = np.zeros(256, dtype=bool)
    mask[list(values)] = True
    return mask


def values_outside(label: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """bool (H, W): the pixels of ``label`` (uint8 or uint16) not marked in ``valid`` (bool[256])."""
    table = np.zeros(max(int(label.max()) + 1, valid.size), dtype=bool)
    table[:valid.size] = valid
    return ~table[label]


def check_label_values(label: np.ndarray, valid: np.ndarray, path: str, table: str, where: str = "") -> None:
    """Every value of ``label`` (uint8 or uint16) must be marked in ``valid`` (bool[256])."""
    top = int(label.max())
    if top < valid.size and valid[: top + 1].all():
        return
    bad = [int(v) for v in np.unique(label[values_outside(label, valid)])]
    shown = ", ".join(str(v) for v in bad[:8]) + (", ..." if len(bad) > 8 else "")
    raise DataError(f"{path}: label values {shown} are not in the {table}{where_suffix(where)}")


#: PIL modes of a label map: 8-bit grey, palette (read as its indices), 1-bit, 16-bit grey.
LABEL_PIL_MODES = ("L", "P", "1", "I;16")


def read_label_map(path: str, where: str = "") -> np.ndarray:
    """A label PNG as ``np.array(Image.open(path))`` reads it, (H, W): uint8 for 8-bit grey and palette
    (the INDEX, not the colour) and 1-bit (0 / 1), uint16 for 16-bit grey."""
    label = read_png(path, LABEL_PIL_MODES, "label", where)
    return label.astype(np.uint8) if label.dtype == bool else label


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
    "cityscapes": LabelFormat("Cityscapes labelId table (0..33)", read_label_map,
                              tables.CITYSCAPES_ID_TO_TRAINID, _valid_mask(sorted(tables.CITYSCAPES_VALID_IDS))),
    "kitti": LabelFormat("KITTI road colours", read_kitti_road_gt, np.arange(256, dtype=np.uint8),
                         _valid_mask([0, 1, tables.IGNORE_LABEL])),
    "voc": LabelFormat("VOC index table (0..20, 255)", read_label_map, np.arange(256, dtype=np.uint8),
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
        (training ids ``0..num_classes-1`` and ``ignore_label``, in a grey or palette PNG).
        Label PNGs are read as PIL reads them (:func:`read_label_map`).
    num_classes : number of training classes (checked in mode ``'none'``).
    ignore_label : the ignored training id written for void pixels, ids outside the table and padding.
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
                read_label_map, np.arange(256, dtype=np.uint8),
                _valid_mask(list(range(self.num_classes)) + [self.ignore_label]))
            lut = label_format.lut.copy()
        else:
            label_format = LABEL_FORMATS[self.mode]
            lut = label_format.lut.copy()
            lut[~label_format.valid] = tables.IGNORE_LABEL
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

    @property
    def converts(self) -> bool:
        """True when the files hold a dataset's own values (``convert_label``), False for training ids."""
        return self.mode != "none"

    def read_counted(self, path: str, where: str = "") -> Tuple[np.ndarray, int]:
        """The raw label map (H, W) uint8 and how many of its pixels are outside the table.

        Map it to training ids with ``lut``. With ``convert_label`` a value outside the table
        (also one above 255 in a 16-bit file) is kept as a value that ``lut`` maps to
        ``ignore_label`` and counted; without it, such a value is a DataError.
        """
        label = self.label_format.read_raw(path, where)
        if not self.converts:
            check_label_values(label, self.valid, path, self.table_name, where)
            return label.astype(np.uint8, copy=False), 0
        top = int(label.max())
        if top < self.valid.size and self.valid[: top + 1].all():
            return label.astype(np.uint8, copy=False), 0
        outside = values_outside(label, self.valid)
        raw = np.where(outside, np.flatnonzero(~self.valid)[0], label).astype(np.uint8)
        return raw, int(np.count_nonzero(outside))

    def read(self, path: str, where: str = "") -> np.ndarray:
        """The raw label map (H, W) uint8 (see :meth:`read_counted`); map it to training ids with ``lut``."""
        return self.read_counted(path, where)[0]
