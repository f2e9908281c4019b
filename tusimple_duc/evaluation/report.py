"""The result of an evaluation and its textual forms: the printed table and the metrics JSON.

Every dataset protocol returns an :class:`EvaluationResult`. ``tools/evaluate.py`` and
``test.py`` print :func:`format_tables`, write :func:`write_metrics_json` and draw the
figures with :func:`tusimple_duc.viz.plots.write_result_figures`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from tusimple_duc.io.atomic import atomic_write_json


@dataclass
class ScoreTable:
    """Scores of named rows (classes or categories).

    Attributes
    ----------
    title : str
        What the rows are, e.g. ``"classes"`` or ``"categories"``.
    names : list of str
        R row names.
    columns : dict of str to np.ndarray
        Column name (``"IoU"``, ``"iIoU"``, ``"MaxF"``, ...) -> (R,) float64 scores in [0, 1],
        NaN where a score is undefined.
    """

    title: str
    names: List[str]
    columns: Dict[str, np.ndarray]


@dataclass
class EvaluationResult:
    """Everything one evaluation produced.

    Attributes
    ----------
    dataset : str
        ``"cityscapes"``, ``"kitti"`` or ``"voc"``.
    num_images : int
        Images evaluated.
    summary : dict of str to float
        The headline numbers (``"mIoU"``, ``"iIoU"``, ``"MaxF"``, ...), fractions in [0, 1].
    tables : list of ScoreTable
        Per-class (first) and further per-group scores.
    confusion : np.ndarray or None
        (K, K') int64 pixel counts, rows ground truth, columns prediction.
    confusion_rows, confusion_columns : list of str
        Names of the K rows and K' columns of ``confusion``.
    details : dict
        Further JSON-ready, dataset-specific data (e.g. the full labelId confusion matrix).
    """

    dataset: str
    num_images: int
    summary: Dict[str, float]
    tables: List[ScoreTable]
    confusion: Optional[np.ndarray] = None
    confusion_rows: List[str] = field(default_factory=list)
    confusion_columns: List[str] = field(default_factory=list)
    details: Dict[str, Any] = field(default_factory=dict)

    def table(self, title: str) -> ScoreTable:
        """The table called ``title`` (KeyError if there is none)."""
        for table in self.tables:
            if table.title == title:
                return table
        raise KeyError(title)


def _json_number(value: Any) -> Any:
    """A float for JSON, with NaN as null (JSON has no NaN)."""
    value = float(value)
    return None if math.isnan(value) else value


def result_to_dict(result: EvaluationResult) -> Dict[str, Any]:
    """The JSON form of a result: NaN scores become null, arrays become lists."""
    data: Dict[str, Any] = {
        "dataset": result.dataset,
        "num_images": result.num_images,
        "summary": {key: _json_number(value) for key, value in result.summary.items()},
        "tables": {
            table.title: {
                name: {column: _json_number(values[row]) for column, values in table.columns.items()}
                for row, name in enumerate(table.names)
            }
            for table in result.tables
        },
        "details": result.details,
    }
    if result.confusion is not None:
        data["confusion"] = {
            "rows": list(result.confusion_rows),
            "columns": list(result.confusion_columns),
            "counts": np.asarray(result.confusion).tolist(),
        }
    return data


def write_metrics_json(path: str, result: EvaluationResult) -> None:
    """Write :func:`result_to_dict` of ``result`` to ``path`` atomically."""
    atomic_write_json(path, result_to_dict(result))


def _format_score(value: float) -> str:
    return "   nan" if math.isnan(value) else f"{value:6.4f}"


def format_table(table: ScoreTable) -> str:
    """One table as aligned text: a header line, one line per row."""
    width = max([len(table.title)] + [len(name) for name in table.names]) + 2
    header = table.title.ljust(width) + "".join(column.rjust(10) for column in table.columns)
    lines = [header, "-" * len(header)]
    for row, name in enumerate(table.names):
        lines.append(name.ljust(width) + "".join(
            _format_score(values[row]).rjust(10) for values in table.columns.values()))
    return "\n".join(lines)


def format_tables(result: EvaluationResult) -> str:
    """All tables of a result followed by the summary, as printed by the tools."""
    blocks = [format_table(table) for table in result.tables]
    summary = [f"{result.dataset}: {result.num_images} images"]
    summary += [f"{key:<20} {_format_score(value)}" for key, value in result.summary.items()]
    return "\n\n".join(blocks + ["\n".join(summary)])
