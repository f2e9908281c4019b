"""``compare_systems``: train and cost every selected system, then write the report folder."""
from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Callable, List, Optional, Sequence

from tusimple_duc.engine.trainer import TrainingDivergedError
from tusimple_duc.errors import ConfigError
from tusimple_duc.io.atomic import atomic_write_json, atomic_write_text, ensure_writable_dir
from experiments.systems.entries import ENTRIES, SystemEntry, entry
from experiments.systems.report import Row, figures, markdown
from experiments.systems.run import Budget, Trained, measure_cost, render_splits, train_and_score

REPORT_NAME = "SYSTEMS.md"


def select_entries(keys: Optional[Sequence[str]]) -> List[SystemEntry]:
    """The entries named by ``keys`` in table order (all when None); ConfigError naming ``--systems``
    for an unknown key."""
    if not keys:
        return list(ENTRIES)
    unknown = [key for key in keys if entry(key) is None]
    if unknown:
        raise ConfigError(f"--systems: unknown system(s) {', '.join(unknown)} "
                          f"(known: {', '.join(e.key for e in ENTRIES)})")
    return [e for e in ENTRIES if e.key in keys]


def compare_systems(out_dir: str, budget: Budget, keys: Optional[Sequence[str]] = None,
                    progress: Callable[[str], None] = lambda line: None) -> List[Row]:
    """Train, score and cost the systems ``keys`` under ``budget``; writes ``SYSTEMS.md``,
    ``systems.json`` (every number) and the figures into ``out_dir``; returns the rows. A system
    whose training diverges gets NaN scores (``n/a`` in the table) and the others go on."""
    systems = select_entries(keys)
    ensure_writable_dir(out_dir, "report folder")
    train, val = render_splits(budget)
    rows = []
    for system in systems:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Gluon's notice about PSPNet's unused auxiliary layers
            try:
                trained = train_and_score(system, budget, train, val)
            except TrainingDivergedError as err:  # one system's divergence is a result, not the end
                progress(f"{system.title}: {err}")
                trained = Trained(float("nan"), float("nan"), (), (), float("nan"))
        cost = measure_cost(system, budget)
        rows.append(Row(system, trained, cost))
        progress(f"{system.title}: mIoU {100 * trained.miou:.1f} %, {trained.seconds:.0f} s, "
                 f"{cost.gmacs:.3g} GMACs, {cost.latency:.3f} s")
    figures(rows, out_dir)
    atomic_write_text(os.path.join(out_dir, REPORT_NAME), markdown(rows, budget))
    atomic_write_json(os.path.join(out_dir, "systems.json"), {
        "budget": dataclasses.asdict(budget),
        "systems": [dict(key=r.entry.key, preset=r.entry.full, **dataclasses.asdict(r.trained),
                         **dataclasses.asdict(r.cost)) for r in rows]})
    return rows
