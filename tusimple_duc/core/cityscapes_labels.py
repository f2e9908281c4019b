"""The original's ``tusimple_duc.core.cityscapes_labels`` names over :mod:`tusimple_duc.data.labels`.

``labels`` rows have the original's attribute names (``name``, ``id``, ``trainId``, ``category``,
``categoryId``, ``hasInstances``, ``ignoreInEval``, ``color``).
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Tuple

from tusimple_duc.data.labels import CITYSCAPES_LABELS


class Label(NamedTuple):
    """One row of the official Cityscapes label table (original field names)."""

    name: str
    id: int
    trainId: int
    category: str
    categoryId: int
    hasInstances: bool
    ignoreInEval: bool
    color: Tuple[int, int, int]


labels: List[Label] = [Label(*row) for row in CITYSCAPES_LABELS]
name2label: Dict[str, Label] = {label.name: label for label in labels}
id2label: Dict[int, Label] = {label.id: label for label in labels}
trainId2label: Dict[int, Label] = {label.trainId: label for label in reversed(labels)}
#: category name -> its labels, in table order (the original's ``category2labels``).
category2labels: Dict[str, List[Label]] = {}
for _label in labels:
    category2labels.setdefault(_label.category, []).append(_label)
del _label


def assureSingleInstanceName(name: str) -> Optional[str]:  # noqa: N802  (the original's name)
    """The label name of a single instance: a known name itself, ``"<name>group"`` -> ``name`` when that
    label has instances, else None (``car`` -> ``car``, ``cargroup`` -> ``car``, ``skygroup`` -> None)."""
    if name in name2label:
        return name
    if not name.endswith("group"):
        return None
    single = name[:-len("group")]
    if single in name2label and name2label[single].hasInstances:
        return single
    return None
