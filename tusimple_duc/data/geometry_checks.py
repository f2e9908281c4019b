"""Checks of a list's crop centres against its images, before and while samples are made.

A list centre outside its image (for example 1024x2048 centres on half-size images) would
train on crops of padding whose labels are all ignored: it is a DataError naming the list
line. An image smaller than the crop is legal (the original pads it) but worth one warning.
"""
from __future__ import annotations

import logging
from typing import Dict, List, Optional, Sequence, Tuple

from tusimple_duc.data.lists import ListEntry, resolve
from tusimple_duc.data.readers import read_image_size
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


def check_list_geometry(entries: Sequence[ListEntry], crop_shape: Tuple[int, int], data_dir: str = "") -> None:
    """Check every list centre against its image's size (read from the file header).

    A centre outside its image is a :class:`DataError` (:func:`check_centre`). Images smaller
    than ``crop_shape`` (rows, cols; their crops are padded beyond the image, as in the original) give one
    warning naming the first such list line and how many there are. Images whose header
    cannot be read are left to the errors of the samples themselves.
    """
    sizes: Dict[str, Optional[Tuple[int, int]]] = {}
    smaller: List[Tuple[ListEntry, str, Tuple[int, int]]] = []
    rows, cols = crop_shape
    for entry in entries:
        path = resolve(data_dir, entry.image)
        if path not in sizes:
            try:
                sizes[path] = read_image_size(path, entry.where)
            except DataError:
                sizes[path] = None
        size = sizes[path]
        if size is None:
            continue
        check_centre(entry, size, path)
        if rows > size[0] or cols > size[1]:
            smaller.append((entry, path, size))
    if smaller:
        entry, path, (height, width) = smaller[0]
        more = f" (and {len(smaller) - 1} more list lines)" if len(smaller) > 1 else ""
        logger.warning("%s: crop %dx%d is larger than the %dx%d image %s%s; the crop is padded with the mean "
                       "colour and ignored labels", entry.where or f"list entry {entry.index}", rows, cols,
                       height, width, path, more)
