"""The original list format, and the geometry of the patch schemes written into lists.

A list is a text file with one TAB-separated line per sample (``data_lists/README.md``):

* training line: ``index  image_path  label_path  crop_center_row  crop_center_col``
* test line:     ``index  image_path  label_path``, or ``index  image_path`` (no ground truth,
  e.g. a test-server submission; the original's ``predict_full_image.py`` read field 1 only)

Paths are relative to the configured roots (``data_dir`` for images, ``label_dir``
for labels) or absolute; :func:`resolve` joins them with :func:`os.path.join`, which
keeps an absolute path as it is. Centres are in pixels of the original (unscaled)
image. A line without a centre is cropped around the image centre.

Patch schemes (all centres are integers; a patch of size ``P`` centred at ``c``
covers ``[c - P//2, c - P//2 + P)``, the same convention as the training crop):

* **7-fold** (released lists, paper 4.1.1 "bigger patch"): seven centres per image,
  row ``H//2``, columns ``W*i//8`` for ``i = 1..7`` (512 and 256*i on 1024x2048).
* **12-fold** (paper 4.1.1 baseline): ``rows x cols = 2 x 6`` patches of 800x800,
  evenly spaced so that the first and last patch of each axis are flush with the image
  border: centre ``P//2 + floor(k*(L - P)/(n - 1) + 1/2)`` for ``k = 0..n-1``. On
  1024x2048: rows 400, 624; columns 400, 650, 899, 1149, 1398, 1648. Every pixel is
  covered and every patch lies inside the image.
* **sliding patches** (KITTI road, paper 4.2): 320x320 patches every 100 px, the last
  patch of each axis flush with the border.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

from tusimple_duc.errors import DataError
from tusimple_duc.io.atomic import atomic_write_text

Centre = Tuple[float, float]


@dataclass(frozen=True)
class ListEntry:
    """One line of a list.

    Attributes
    ----------
    index : the line's index column.
    image : image path as written in the list (relative to ``data_dir`` or absolute).
    label : label path as written in the list (relative to ``label_dir`` or absolute); ``""`` for a
        test line of two fields.
    centre : ``(row, col)`` crop centre in original image pixels, ``None`` for a test line.
    where : ``"<list file> line <n>"`` for error messages, empty when not read from a file.
    """

    index: int
    image: str
    label: str
    centre: Optional[Centre] = None
    where: str = ""


def resolve(root: str, path: str) -> str:
    """Join a list path onto its root; an absolute ``path`` is kept as it is."""
    return os.path.join(root, path) if root else path


def _parse_number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {what} {text!r} is not a finite number")
    return value


def parse_list_line(line: str, where: str) -> ListEntry:
    """Parse one non-empty list line (no trailing newline) of 2, 3 or 5 fields; ``where`` names it in errors."""
    fields = line.split("\t")
    if len(fields) not in (2, 3, 5):
        hint = " (the line has spaces but no TAB)" if len(fields) == 1 and " " in line.strip() else ""
        raise DataError(f"{where}: expected 2, 3 or 5 TAB-separated fields, got {len(fields)}{hint}")
    try:
        index = int(fields[0])
    except ValueError:
        raise DataError(f"{where}: index {fields[0]!r} is not an integer") from None
    image, label = fields[1].strip(), fields[2].strip() if len(fields) > 2 else ""
    if not image or (len(fields) > 2 and not label):
        raise DataError(f"{where}: empty {'image' if not image else 'label'} path")
    centre = None
    if len(fields) == 5:
        centre = (_parse_number(fields[3], "crop centre row", where),
                  _parse_number(fields[4], "crop centre column", where))
    return ListEntry(index, image, label, centre, where)


def read_list(path: str) -> List[ListEntry]:
    """Read a list file; blank lines are skipped.

    Raises
    ------
    DataError
        The file is missing or unreadable, a line is malformed (naming the line), the
        lines mix the test (2 or 3 fields) and training (5 fields) formats, or the list has no entry.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: list file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read list file ({exc})") from None
    entries: List[ListEntry] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        entry = parse_list_line(line.rstrip("\r"), f"{path} line {number}")
        if entries and (entry.centre is None) != (entries[0].centre is None):
            raise DataError(f"{entry.where}: has {field_count(entry)} fields but "
                            f"{entries[0].where} has {field_count(entries[0])}")
        entries.append(entry)
    if not entries:
        raise DataError(f"{path}: list is empty")
    return entries


def field_count(entry: ListEntry) -> int:
    """How many fields the list line of ``entry`` has: 2 (no label), 3 or 5 (a crop centre)."""
    return 5 if entry.centre is not None else 3 if entry.label else 2


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def format_list_line(entry: ListEntry) -> str:
    """The list line of ``entry`` (no newline)."""
    fields = [str(entry.index), entry.image] + ([entry.label] if entry.label or entry.centre else [])
    if entry.centre is not None:
        fields += [_format_number(entry.centre[0]), _format_number(entry.centre[1])]
    return "\t".join(fields)


def write_list(path: str, entries: Iterable[ListEntry]) -> int:
    """Write ``entries`` to ``path`` atomically; returns the number of lines."""
    lines = [format_list_line(entry) for entry in entries]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def numbered(entries: Iterable[ListEntry]) -> List[ListEntry]:
    """``entries`` with the index column renumbered 0, 1, 2, ... (the line order)."""
    return [ListEntry(i, e.image, e.label, e.centre, e.where) for i, e in enumerate(entries)]


def with_centres(image: str, label: str, centres: Sequence[Tuple[int, int]]) -> List[ListEntry]:
    """One training entry per centre for the image/label pair (index 0; see :func:`numbered`)."""
    return [ListEntry(0, image, label, (row, col)) for row, col in centres]


# ------------------------------------------------------------------ geometry
def seven_fold_centres(height: int, width: int) -> List[Tuple[int, int]]:
    """The released 7-fold centres ``(H//2, W*i//8)``, ``i = 1..7``, in ``(row, col)`` pixels."""
    return [(height // 2, width * i // 8) for i in range(1, 8)]


def evenly_spaced_centres(length: int, patch: int, count: int) -> List[int]:
    """``count`` patch centres along an axis of ``length`` px, first and last patch flush with the border.

    A patch of ``patch`` px centred at ``c`` covers ``[c - patch//2, c - patch//2 + patch)``.
    When the patch is not smaller than the axis, every centre is ``length // 2``.
    """
    if count < 1 or patch < 1:
        raise ValueError(f"need count >= 1 and patch >= 1, got count {count}, patch {patch}")
    if length <= patch:
        return [length // 2] * count
    if count == 1:
        return [length // 2]
    span = length - patch
    return [patch // 2 + math.floor(k * span / (count - 1) + 0.5) for k in range(count)]


def twelve_fold_centres(height: int, width: int, patch: int | Tuple[int, int] = 800,
                        rows: int = 2, cols: int = 6) -> List[Tuple[int, int]]:
    """Centres of the 12-fold scheme: ``rows x cols`` evenly spaced patches, row-major.

    Parameters
    ----------
    height, width : image size, pixels.
    patch : patch size (square, or ``(rows, cols)``), pixels.
    rows, cols : patches per column and per row (2 x 6 = 12).
    """
    patch_rows, patch_cols = (patch, patch) if isinstance(patch, int) else patch
    row_centres = evenly_spaced_centres(height, patch_rows, rows)
    col_centres = evenly_spaced_centres(width, patch_cols, cols)
    return [(r, c) for r in row_centres for c in col_centres]


def sliding_starts(length: int, patch: int, stride: int) -> List[int]:
    """Patch starts ``0, stride, 2*stride, ...`` with the last patch flush with the border."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if length <= patch:
        return [0]
    starts = list(range(0, length - patch + 1, stride))
    if starts[-1] != length - patch:
        starts.append(length - patch)
    return starts


def sliding_patch_centres(height: int, width: int, patch: int = 320,
                          stride: int = 100) -> List[Tuple[int, int]]:
    """Centres of ``patch x patch`` patches every ``stride`` px covering the image, row-major.

    An axis shorter than the patch gets one centre at its middle (the crop is padded).
    """
    def centres(length: int) -> List[int]:
        if length <= patch:
            return [length // 2]
        return [start + patch // 2 for start in sliding_starts(length, patch, stride)]

    return [(r, c) for r in centres(height) for c in centres(width)]
