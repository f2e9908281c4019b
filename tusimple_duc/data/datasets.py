"""Building blocks of the list builders of the datasets (``tusimple_duc.datasets``).

A dataset's lists are ``{list name: entries}`` (:data:`Lists`); paths are relative to the
dataset root given (use it as both ``data_dir`` and ``label_dir``), the index column is the
line number. Image sizes are read from the file headers, and an image whose label is missing
or of a different size is a :class:`~tusimple_duc.errors.DataError`.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, List, Sequence, Tuple

from tusimple_duc.data.lists import ListEntry, numbered, with_centres, write_list
from tusimple_duc.data.readers import read_image_size
from tusimple_duc.errors import DataError

Lists = Dict[str, List[ListEntry]]
Pair = Tuple[str, str]


def checked_size(root: str, image: str, label: str) -> Tuple[int, int]:
    """Size of the image of a pair; the label must exist and have the same size."""
    image_path, label_path = os.path.join(root, image), os.path.join(root, label)
    if not os.path.isfile(label_path):
        raise DataError(f"{label_path}: label of {image_path} not found")
    size = read_image_size(image_path)
    label_size = read_image_size(label_path)
    if size != label_size:
        raise DataError(f"{label_path}: label is {label_size[0]}x{label_size[1]} but image {image_path} is "
                        f"{size[0]}x{size[1]}")
    return size


def require_dir(path: str, what: str) -> None:
    if not os.path.isdir(path):
        raise DataError(f"{path}: folder not found ({what})")


def whole_image_entries(pairs: Sequence[Pair]) -> List[ListEntry]:
    """Test-format entries (no centre) of image/label pairs."""
    return numbered(ListEntry(0, image, label) for image, label in pairs)


def patch_entries(root: str, pairs: Sequence[Pair], centres: Callable[[int, int], List[Tuple[int, int]]]
                  ) -> List[ListEntry]:
    """Training entries: one per centre that ``centres(height, width)`` gives for each pair."""
    entries: List[ListEntry] = []
    for image, label in pairs:
        entries += with_centres(image, label, centres(*checked_size(root, image, label)))
    return numbered(entries)


# ------------------------------------------------------------------ writing
def write_lists(lists: Lists, out_dir: str) -> Dict[str, int]:
    """Write every list to ``out_dir/<name>.lst`` atomically; returns the line counts."""
    return {name: write_list(os.path.join(out_dir, f"{name}.lst"), entries) for name, entries in lists.items()}
