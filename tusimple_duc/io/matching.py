"""Compare the arrays a file provides with the arrays a network expects, and report it.

One comparison serves every loader (checkpoints, Gluon parameter files, symbol JSON
cross-checks, ImageNet initialisation): names present on one side only, and names whose
shapes differ. A failed comparison is ONE :class:`CheckpointMismatchError` whose message
gives the counts and the first few names on one line; the full lists are attributes of
the exception (and logged at debug level).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence, Tuple

from tusimple_duc.errors import CheckpointError

Shape = Tuple[int, ...]
SHOWN_NAMES = 3  # names quoted per category in a one-line message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Comparison:
    """Outcome of :func:`compare_shapes`.

    missing: expected by the network, absent from the file.
    unexpected: in the file, unknown to the network.
    mismatched: ``(name, file shape, network shape)`` for names on both sides whose shapes differ.
    matched: names on both sides with compatible shapes.
    """

    missing: Tuple[str, ...] = ()
    unexpected: Tuple[str, ...] = ()
    mismatched: Tuple[Tuple[str, Shape, Shape], ...] = ()
    matched: Tuple[str, ...] = field(default=(), repr=False)

    def summary(self, include_missing: bool = True, include_unexpected: bool = True,
                include_mismatched: bool = True) -> str:
        """One line: counts and the first names of each selected category."""
        parts = []
        if include_missing and self.missing:
            parts.append(f"{len(self.missing)} missing ({_first(self.missing)})")
        if include_unexpected and self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected ({_first(self.unexpected)})")
        if include_mismatched and self.mismatched:
            shown = ", ".join(f"{name}: file {_fmt(found)} vs network {_fmt(want)}"
                              for name, found, want in self.mismatched[:SHOWN_NAMES])
            more = ", ..." if len(self.mismatched) > SHOWN_NAMES else ""
            parts.append(f"{len(self.mismatched)} with another shape ({shown}{more})")
        return "; ".join(parts)


class CheckpointMismatchError(CheckpointError):
    """A file's arrays do not match the network. Attributes: ``path``, ``comparison``
    (a :class:`Comparison` with the complete lists ``missing``, ``unexpected``, ``mismatched``)."""

    def __init__(self, message: str, path: str, comparison: Comparison) -> None:
        super().__init__(message)
        self.path = path
        self.comparison = comparison

    @property
    def missing(self) -> Tuple[str, ...]:
        return self.comparison.missing

    @property
    def unexpected(self) -> Tuple[str, ...]:
        return self.comparison.unexpected

    @property
    def mismatched(self) -> Tuple[Tuple[str, Shape, Shape], ...]:
        return self.comparison.mismatched


def compare_shapes(expected: Mapping[str, Shape],
                   found: Mapping[str, Optional[Shape]]) -> Comparison:
    """Compare ``{name: shape}`` of the network (``expected``) with those of a file.

    A 0 in an expected shape is an unknown dimension (Gluon deferred initialisation) and
    matches any size; a found shape None (unknown) matches any shape.
    """
    missing = tuple(name for name in expected if name not in found)
    unexpected = tuple(name for name in found if name not in expected)
    mismatched, matched = [], []
    for name, want in expected.items():
        if name not in found:
            continue
        have = found[name]
        if have is None or shapes_compatible(want, have):
            matched.append(name)
        else:
            mismatched.append((name, tuple(have), tuple(want)))
    return Comparison(missing, unexpected, tuple(mismatched), tuple(matched))


def shapes_compatible(expected: Sequence[int], found: Sequence[int]) -> bool:
    """Same rank and equal sizes, 0 in ``expected`` matching anything."""
    return len(expected) == len(found) and all(e in (0, f) for e, f in zip(expected, found))


def raise_if_mismatch(comparison: Comparison, path: str, what: str, allow_missing: bool = False,
                      allow_extra: bool = False) -> None:
    """Raise one :class:`CheckpointMismatchError` unless the comparison is acceptable.

    ``allow_missing`` accepts missing names and names with another shape (both are left to
    be initialised otherwise); ``allow_extra`` accepts unexpected names. ``what`` completes
    the sentence ``"<path>: <what>: <summary>"``.
    """
    summary = comparison.summary(include_missing=not allow_missing,
                                 include_unexpected=not allow_extra,
                                 include_mismatched=not allow_missing)
    if not summary:
        return
    log.debug("%s: missing %s; unexpected %s; other shape %s", path, list(comparison.missing),
              list(comparison.unexpected), list(comparison.mismatched))
    raise CheckpointMismatchError(f"{path}: {what}: {summary}", path, comparison)


def _first(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    return shown + (", ..." if len(names) > SHOWN_NAMES else "")


def _fmt(shape: Sequence[int]) -> str:
    return str(tuple(int(d) for d in shape))
