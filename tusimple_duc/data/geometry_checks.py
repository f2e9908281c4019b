"""Checks of a list against its files' headers at start-up, and of crop centres while samples are made.

At start-up every image and label header of a training list is read (nothing is decoded), so
that these are one DataError naming the list line before the first batch rather than in the
middle of an epoch: a line without a label path, an image or label path that is a folder, a
label whose size differs from its image's, and a crop centre outside its image (for example
1024x2048 centres on half-size images, which would train on crops of padding whose labels are
all ignored). Missing or undecodable files are left to the samples (``skip_bad`` may skip
them). An image smaller than the crop is legal (the original pads it) but worth one warning;
so are images that ``cv2.imread`` converts (grey, alpha, 16-bit, palette): one warning with
their count.
"""
from __future__ import annotations

import logging
import os
from typing import Dict, List, Optional, Sequence, Tuple

from tusimple_duc.data.lists import ListEntry, resolve
from tusimple_duc.data.readers import ImageHeader, read_image_header
from tusimple_duc.errors import DataError

logger = logging.getLogger(__name__)


def check_centre(entry: ListEntry, image_shape: Tuple[int, int], image_path: str) -> None:
    """A list centre must lie in the image (H, W): ``0 <= row < H`` and ``0 <= col < W``.

    Raises
    ------
    DataError
        Naming the list line, the centre and the image (a list made for another resolution,
        e.g. 1024x2048 centres on half-size images, would otherwise train on padding).
    """
    if entry.centre is None:
        return
    row, col = entry.centre
    height, width = image_shape
    if not (0 <= row < height and 0 <= col < width):
        where = entry.where or f"list entry {entry.index}"
        raise DataError(f"{where}: crop centre (row {row:g}, col {col:g}) is outside the {height}x{width} "
                        f"image {image_path}")


def _header(path: str, entry: ListEntry, cache: Dict[str, Optional[ImageHeader]]) -> Optional[ImageHeader]:
    """The header of ``path`` (cached); None when the file is missing or unreadable (left to the
    samples); a folder is a DataError naming the list line."""
    if path not in cache:
        if os.path.isdir(path):
            raise DataError(f"{entry.where or f'list entry {entry.index}'}: {path} is a folder, not a file")
        try:
            cache[path] = read_image_header(path, entry.where)
        except DataError:
            cache[path] = None
    return cache[path]


def check_list_geometry(entries: Sequence[ListEntry], crop_shape: Tuple[int, int], data_dir: str = "",
                        label_dir: str = "", source: str = "list") -> None:
    """Check a training list against its files' headers (the module docstring says what).

    Parameters
    ----------
    entries : the list's entries.
    crop_shape : (rows, cols) of the training crop, pixels.
    data_dir, label_dir : roots of the relative image and label paths.
    source : the list file, for the warnings.

    Raises
    ------
    DataError
        One line naming the list line: no label path, a folder, a label of another size than
        its image, a centre outside its image (:func:`check_centre`).
    """
    headers: Dict[str, Optional[ImageHeader]] = {}
    smaller: List[Tuple[ListEntry, str, Tuple[int, int]]] = []
    converted: Dict[str, str] = {}
    rows, cols = crop_shape
    for entry in entries:
        where = entry.where or f"list entry {entry.index}"
        if not entry.label:
            raise DataError(f"{where}: no label path (a test line of 2 fields); a training list has 3 or 5 fields")
        path, label_path = resolve(data_dir, entry.image), resolve(label_dir, entry.label)
        header, label_header = _header(path, entry, headers), _header(label_path, entry, headers)
        if header is None:
            continue
        if header.converted:
            converted.setdefault(path, header.pixel_format)
        size = (header.height, header.width)
        if label_header is not None and (label_header.height, label_header.width) != size:
            raise DataError(f"{where}: label {label_path} is {label_header.height}x{label_header.width} but image "
                            f"{path} is {size[0]}x{size[1]}")
        check_centre(entry, size, path)
        if rows > size[0] or cols > size[1]:
            smaller.append((entry, path, size))
    if smaller:
        entry, path, (height, width) = smaller[0]
        more = f" (and {len(smaller) - 1} more list lines)" if len(smaller) > 1 else ""
        logger.warning("%s: crop %dx%d is larger than the %dx%d image %s%s; the crop is padded with the mean "
                       "colour and ignored labels", entry.where or f"list entry {entry.index}", rows, cols,
                       height, width, path, more)
    if converted:
        log_converted_images(source, converted)


def log_converted_images(source: str, converted: Dict[str, str]) -> None:
    """One warning: how many images (path -> pixel format) are not 8-bit colour and are converted as
    ``cv2.imread`` converts them, with the first as an example."""
    path, pixel_format = next(iter(converted.items()))
    logger.warning("%s: %d image(s) are not 8-bit colour and are read as the original's cv2.imread reads them "
                   "(grey replicated, alpha dropped, 16-bit shifted to 8, palette expanded), e.g. %s (%s)",
                   source, len(converted), path, pixel_format)
