"""Hybrid dilated convolution (HDC): dilation schedules, the gridding rule and exact coverage.

Dilation schedules
------------------
A schedule gives the dilation rate of the 3x3 conv of every bottleneck block of the
dilated stages. It is resolved per stage from the stage's *base rate* ``b``: the rate
DeepLab would use after removing the strides, which depends on the output stride::

    output stride   stage 3   stage 4   stage 5
         16            1         1         2
          8            1         2         4     (paper, released model)
          4            2         4         8

A stage with ``b = 1`` is not dilated under every named schedule (all rates 1). For a
dilated stage with ``n`` blocks the named schedules are *sawtooth* waves: a group of
rates repeated ``n // len(group)`` times, the ``n % len(group)`` remaining blocks filled
by a per-schedule rule. Definitions (paper section 4.1.3, Table 2):

``none``            every rate 1 ("No dilation"; the feature map keeps output stride d).
``deeplab``         every rate ``b`` (the DeepLab-v2 baseline: 2 in stage 4, 4 in stage 5).
``dilation-conv``   groups ``(b, 1)``, remainder ``(b,)``. Paper item 2 says "group every 2
                    blocks, r = 2 for the first and 1 for the second" for *all* dilated blocks;
                    we read "r = 2" as "the block's original rate", i.e. stage 5 is 4, 1, 4.
                    This is the reading that reproduces Table 2's "RF increased" of 88
                    (stage 4: 11 x (2+1) + 2 = 35, stage 5: 9, 2 x (35+9) = 88); the literal
                    stage 5 = 2, 1, 2 would give 80.
``dilation-rf``     groups ``(b-1, b, b+1)``, remainder blocks keep ``b``: stage 4 = 1, 2, 3 x 7
                    then 2, 2; stage 5 = 3, 4, 5 (RF increased 2 x 58 = 116 as in Table 2).
``dilation-bigger`` groups from the sequence 1, 2, 5, 9, 17, 33 (``r -> 2r - 1`` after 2):
                    ``b = 2``: (1, 2, 5, 9); ``b = 4``: (5, 9, 17); ``b = 8``: (9, 17, 33)
                    (``b = 8`` only occurs at output stride 4 and is our extrapolation);
                    remainder = a prefix of the group (stage 4 of ResNet-101 ends 1, 2, 5).
``gluoncv``         GluonCV's dilated ResNetV1b (``_make_layer``): the first block of a dilated
                    stage keeps the previous stage's rate ``b / 2``, the others ``b`` (stage 4 =
                    1, 2, ..., 2; stage 5 = 2, 4, 4). The PSPNet authors' prototxt is ``deeplab``.
``released``        the released checkpoint: ``dilation-bigger`` except that the first
                    block of a ``b = 2`` stage keeps ``b`` = 2 (stage 4 = 2, 2, 5, 9, 1, 2, 5, 9,
                    ..., 1, 2, 5; stage 5 = 5, 9, 17).

Table 2 also reports "RF increased" (54, 88, 116, 256). :func:`receptive_field_increase`
(= sum of ``2 r`` over the 3x3 convs of stages 4-5) gives 52, 88, 116, 248 (released: 250):
exact for Dilation-conv and Dilation-RF; the paper's other two numbers are not reproducible
from its own definitions.

An explicit schedule is a sequence of 2 rate lists (stages 4 and 5) or 3 (stages 3, 4, 5);
each list must have exactly one rate per block. Stages not listed use ``deeplab``.

The gridding rule
-----------------
:func:`hdc_check` applies the paper's rule, Eq. (2), to one group; :func:`schedule_report`
to every group of a schedule. The exact coverage analysis (which input offsets reach one
output pixel) is :mod:`tusimple_duc.models.gridding`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union


Rates = Tuple[int, ...]
Schedule = Union[str, Sequence[Sequence[int]]]

NAMED_SCHEDULES: Tuple[str, ...] = (
    "none", "deeplab", "dilation-conv", "dilation-rf", "dilation-bigger", "released", "gluoncv")

#: One convolution of a chain, ``(kernel, dilation, stride)``.
Layer = Tuple[int, int, int]

_BIGGER_GROUPS: Dict[int, Rates] = {2: (1, 2, 5, 9), 4: (5, 9, 17), 8: (9, 17, 33)}


class ScheduleError(ValueError):
    """A dilation schedule is unknown or does not fit the network's block counts."""


def base_rates(output_stride: int) -> Dict[int, int]:
    """DeepLab dilation rate of stages 2-5 at ``output_stride`` (see module docstring)."""
    table = {16: (1, 1, 1, 2), 8: (1, 1, 2, 4), 4: (1, 2, 4, 8)}
    if output_stride not in table:
        raise ScheduleError(f"output stride must be 4, 8 or 16, got {output_stride}")
    return dict(zip((2, 3, 4, 5), table[output_stride]))


def _sawtooth(group: Rates, num_blocks: int, remainder: Optional[int]) -> List[Rates]:
    """Repeat ``group``; fill the leftover blocks with a prefix of it (``remainder`` None)
    or with the single rate ``remainder`` (as one group)."""
    groups = [group] * (num_blocks // len(group))
    left = num_blocks % len(group)
    if left:
        groups.append(group[:left] if remainder is None else (remainder,) * left)
    return groups


def named_stage_groups(name: str, num_blocks: int, base: int) -> List[Rates]:
    """Groups of per-block rates of one stage under a named schedule.

    Parameters
    ----------
    name : one of :data:`NAMED_SCHEDULES`.
    num_blocks : number of bottleneck blocks of the stage (>= 1).
    base : the stage's DeepLab rate (:func:`base_rates`).

    Returns
    -------
    list of tuples whose concatenation has ``num_blocks`` rates.
    """
    if name not in NAMED_SCHEDULES:
        raise ScheduleError(
            f"unknown dilation schedule {name!r} (known: {', '.join(NAMED_SCHEDULES)})")
    if num_blocks < 1:
        raise ScheduleError(f"a stage needs at least one block, got {num_blocks}")
    if base == 1 or name == "none":
        return [(1,)] * num_blocks
    if name == "deeplab":
        return [(base,) * num_blocks]
    if name == "gluoncv":
        return [(base // 2,) + (base,) * (num_blocks - 1)]
    if name == "dilation-conv":
        return _sawtooth((base, 1), num_blocks, remainder=base)
    if name == "dilation-rf":
        return _sawtooth((base - 1, base, base + 1), num_blocks, remainder=base)
    groups = _sawtooth(_BIGGER_GROUPS[base], num_blocks, remainder=None)
    if name == "released" and base == 2:
        groups[0] = (base,) + groups[0][1:]
    return groups


def increasing_runs(rates: Sequence[int]) -> List[Rates]:
    """Split explicit rates into groups: maximal strictly increasing runs."""
    groups: List[List[int]] = []
    for rate in rates:
        if groups and rate > groups[-1][-1]:
            groups[-1].append(rate)
        else:
            groups.append([rate])
    return [tuple(g) for g in groups]


def schedule_groups(schedule: Schedule, blocks_per_stage: Sequence[int],
                    output_stride: int) -> Dict[int, List[Rates]]:
    """Resolve a schedule into groups of rates for stages 2-5.

    Parameters
    ----------
    schedule : a name of :data:`NAMED_SCHEDULES`, or 2 (stages 4, 5) or 3 (stages 3, 4, 5)
        explicit rate lists.
    blocks_per_stage : blocks of stages 2, 3, 4, 5.
    output_stride : 4, 8 or 16.

    Returns
    -------
    ``{stage: [group, ...]}`` for stages 2..5; stage 2 is never dilated.

    Raises
    ------
    ScheduleError : unknown name, wrong number of lists, a list whose length is not the
        stage's block count, or a rate < 1.
    """
    if len(blocks_per_stage) != 4:
        raise ScheduleError(f"blocks_per_stage needs 4 entries, got {len(blocks_per_stage)}")
    blocks = dict(zip((2, 3, 4, 5), blocks_per_stage))
    bases = base_rates(output_stride)
    if isinstance(schedule, str):
        return {s: named_stage_groups(schedule, blocks[s], bases[s]) for s in (2, 3, 4, 5)}
    lists = [tuple(int(r) for r in rates) for rates in schedule]
    if len(lists) not in (2, 3):
        raise ScheduleError(
            f"an explicit dilation schedule needs 2 rate lists (stages 4, 5) or 3 (stages 3, 4, 5), "
            f"got {len(lists)}")
    stages = (4, 5) if len(lists) == 2 else (3, 4, 5)
    out = {s: named_stage_groups("deeplab", blocks[s], bases[s]) for s in (2, 3, 4, 5)}
    for stage, rates in zip(stages, lists):
        if len(rates) != blocks[stage]:
            raise ScheduleError(
                f"dilation schedule lists {len(rates)} rates for stage {stage}, "
                f"but stage {stage} has {blocks[stage]} blocks")
        if any(r < 1 for r in rates):
            raise ScheduleError(f"dilation rates must be >= 1, stage {stage} has {list(rates)}")
        out[stage] = increasing_runs(rates)
    return out


def resolve_schedule(schedule: Schedule, blocks_per_stage: Sequence[int],
                     output_stride: int) -> Dict[int, Rates]:
    """Per-block 3x3 dilation rates ``{stage: (r_1, ..., r_n)}`` for stages 2..5."""
    groups = schedule_groups(schedule, blocks_per_stage, output_stride)
    return {s: tuple(r for g in gs for r in g) for s, gs in groups.items()}


def receptive_field_increase(rates: Mapping[int, Sequence[int]], stages: Sequence[int] = (4, 5),
                             kernel: int = 3) -> int:
    """Receptive-field growth along one axis (feature pixels) of the 3x3 convs of ``stages``."""
    return sum((kernel - 1) * r for s in stages for r in rates[s])


# --------------------------------------------------------------------------- the HDC rule
@dataclass(frozen=True)
class HDCCheck:
    """Result of the paper's gridding rule for one group of rates.

    ``max_distances[i]`` is ``M_{i+1}`` (Eq. 2); ``m2`` is ``M_2`` (None for one layer);
    ``common_factor`` is the gcd of the rates; ``grids`` is True when the group leaves holes
    by the rule: ``M_2 > K`` or a common factor > 1.
    """

    rates: Rates
    kernel: int
    max_distances: Rates
    m2: Optional[int]
    common_factor: int
    grids: bool


def hdc_max_distances(rates: Sequence[int]) -> Rates:
    """``(M_1, ..., M_n)`` of Eq. (2): ``M_n = r_n``,
    ``M_i = max(M_{i+1} - 2 r_i, M_{i+1} - 2 (M_{i+1} - r_i), r_i)``."""
    if not rates:
        raise ScheduleError("need at least one dilation rate")
    m = [0] * len(rates)
    m[-1] = rates[-1]
    for i in range(len(rates) - 2, -1, -1):
        nxt, r = m[i + 1], rates[i]
        m[i] = max(nxt - 2 * r, nxt - 2 * (nxt - r), r)
    return tuple(m)


def hdc_check(rates: Sequence[int], kernel: int = 3) -> HDCCheck:
    """Apply the HDC design rule (goal ``M_2 <= K``, no common factor) to one group."""
    rates = tuple(int(r) for r in rates)
    m = hdc_max_distances(rates)
    m2 = m[1] if len(rates) >= 2 else None
    gcd = reduce(math.gcd, rates)
    grids = gcd > 1 or (m2 is not None and m2 > kernel)
    return HDCCheck(rates, kernel, m, m2, gcd, grids)


@dataclass(frozen=True)
class GroupReport:
    """One group of a schedule: stage, first block (1-based) and the rule's verdict."""

    stage: int
    first_block: int
    check: HDCCheck


def schedule_report(schedule: Schedule, blocks_per_stage: Sequence[int], output_stride: int = 8,
                    kernel: int = 3, stages: Sequence[int] = (3, 4, 5)) -> List[GroupReport]:
    """The HDC rule for every group of the dilated stages of a schedule."""
    reports = []
    for stage, groups in schedule_groups(schedule, blocks_per_stage, output_stride).items():
        if stage not in stages:
            continue
        block = 1
        for group in groups:
            reports.append(GroupReport(stage, block, hdc_check(group, kernel)))
            block += len(group)
    return reports
