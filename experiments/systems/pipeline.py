"""``compare_systems``: train and cost every selected system, then write the report folder."""
from __future__ import annotations

import dataclasses
import json
import os
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence

from tusimple_duc.engine.trainer import TrainingDivergedError
from tusimple_duc.errors import ConfigError
from tusimple_duc.io.atomic import atomic_write_json, atomic_write_text, ensure_writable_dir
from experiments.bench.machine import cpu_identity
from experiments.systems.entries import ENTRIES, SystemEntry, entry
from experiments.systems.report import Row, figures, markdown
from experiments.systems.run import Budget, Cost, Trained, measure_cost, render_splits, train_and_score

REPORT_NAME = "SYSTEMS.md"
RUNS_DIR = "runs"


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(dataclasses.asdict(value)))


def _cached(path: str, budget: Budget, system: SystemEntry) -> Optional[Dict[str, Any]]:
    """The fields saved at ``path`` by an earlier run of the same ``system`` entry (learning rate,
    presets, training pieces) under the same ``budget``; None when there is no such file, it is
    unreadable, or either differs: that system is then run again."""
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    if saved.get("budget") != _as_json(budget) or saved.get("entry") != _as_json(system):
        return None
    return saved.get("fields")


def _save(path: str, budget: Budget, system: SystemEntry, fields: Any, **context: Any) -> None:
    atomic_write_json(path, {"budget": dataclasses.asdict(budget), "entry": dataclasses.asdict(system),
                             "fields": dataclasses.asdict(fields), **context})


def _load_before(path: str) -> float:
    """The 1-minute load average saved with a cost file (NaN when it has none)."""
    try:
        with open(path) as f:
            return float(json.load(f).get("load_average", float("nan")))
    except (OSError, ValueError, TypeError):
        return float("nan")


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
    whose training diverges gets NaN scores (``n/a`` in the table) and the others go on.

    Resumable: each system's scores and costs are kept in ``out_dir/runs/<key>.train.json`` and
    ``<key>.cost.json`` as soon as they are known, and a later call with the same budget and entry
    reuses them (delete a ``.cost.json`` to measure that system's costs again, e.g. on a quiet
    machine)."""
    systems = select_entries(keys)
    ensure_writable_dir(out_dir, "report folder")
    runs = os.path.join(out_dir, RUNS_DIR)
    os.makedirs(runs, exist_ok=True)
    splits = None
    rows = []
    for number, system in enumerate(systems, 1):
        train_path = os.path.join(runs, f"{system.key}.train.json")
        saved = _cached(train_path, budget, system)
        if saved is not None:
            trained = Trained(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})
        else:
            if splits is None:
                splits = render_splits(budget)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Gluon's notice about PSPNet's unused auxiliary layers
                try:
                    trained = train_and_score(system, budget, *splits)
                except TrainingDivergedError as err:  # one system's divergence is a result, not the end
                    progress(f"{system.title}: {err}")
                    trained = Trained(float("nan"), float("nan"), (), (), float("nan"))
            _save(train_path, budget, system, trained)
        cost_path = os.path.join(runs, f"{system.key}.cost.json")
        saved = _cached(cost_path, budget, system)
        if saved is None:
            load = os.getloadavg()[0]  # other work on the CPUs while the latency is measured
            cost = measure_cost(system, budget)
            _save(cost_path, budget, system, cost, load_average=load, cpu=cpu_identity())
        else:
            cost = Cost(**saved)
        rows.append(Row(system, trained, cost, _load_before(cost_path)))
        progress(f"[{number}/{len(systems)}] {system.title}: mIoU {100 * trained.miou:.1f} %, {trained.seconds:.0f} s, "
                 f"{cost.gmacs:.3g} GMACs, {cost.latency:.3f} s")
    figures(rows, out_dir)
    atomic_write_text(os.path.join(out_dir, REPORT_NAME), markdown(rows, budget, cpu_identity()))
    atomic_write_json(os.path.join(out_dir, "systems.json"), {
        "budget": dataclasses.asdict(budget),
        "systems": [dict(key=r.entry.key, preset=r.entry.full, **dataclasses.asdict(r.trained),
                         **dataclasses.asdict(r.cost)) for r in rows]})
    return rows
