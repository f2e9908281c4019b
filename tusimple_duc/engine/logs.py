"""Progress output of a training run: log file, JSON-lines metrics, tqdm bar.

Files (chief worker only, in the run folder ``<model_dir>/<prefix>/<time>/`` next to the checkpoints)::

    <prefix>_<time>.log       human-readable log (the original's name; appended: a resumed run adds to it)
    <prefix>-metrics.jsonl    one JSON object per line (see below)

Metrics records (``kind``):

* ``train``: every ``log_interval`` batches: ``epoch`` (0-based MXNet epoch index),
  ``batch``, ``update``, ``progress`` (fractional epochs, e.g. 20.5), ``lr``, ``loss``
  (softmax cross-entropy per non-ignored pixel), ``pixel_acc`` (ignoring 255),
  ``mean_iou`` (running, over the batches since the previous record), ``samples_per_sec``.
* ``epoch``: the same quantities over the whole epoch, ``progress`` = epoch + 1.
* ``val``: validation after an epoch: ``mean_iou``, ``pixel_acc``, ``loss``, ``per_class_iou``.
* ``checkpoint``: ``epoch`` (the checkpoint number) and the ``.params`` path.

The log is append-only while a run is alive. When a run resumes from checkpoint ``e``,
:meth:`MetricsLog.rewind` atomically rewrites the file without the records of epochs
``>= e`` (written by the interrupted run after its last checkpoint, possibly ending in a
torn line), so the file always describes one consistent history.
"""
from __future__ import annotations

import json
import logging
import math
import os
import sys
from typing import Any, Dict, Iterator, List, Optional

from tqdm import tqdm

from tusimple_duc.io.atomic import atomic_write_text

LOGGER_NAME = "tusimple_duc.train"
_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class _BarFriendlyHandler(logging.StreamHandler):
    """Console handler printing through ``tqdm.write`` so log lines do not break the bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # logging must never raise
            self.handleError(record)


def get_logger() -> logging.Logger:
    """The training logger (``tusimple_duc.train``)."""
    return logging.getLogger(LOGGER_NAME)


def setup_logging(log_file: Optional[str], rank: int = 0) -> logging.Logger:
    """Log INFO to stderr and, if given, to ``log_file`` (appended). Idempotent."""
    logger = get_logger()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    prefix = f"[rank {rank}] " if rank else ""
    console = _BarFriendlyHandler(sys.stderr)
    console.setFormatter(logging.Formatter(prefix + _FORMAT))
    logger.addHandler(console)
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        file_handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        file_handler.setFormatter(logging.Formatter(_FORMAT))
        logger.addHandler(file_handler)
    return logger


def log_to_file_only(message: str) -> None:
    """Write ``message`` as an ERROR record to the log file only (the terminal gets the error from the script)."""
    logger = get_logger()
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def close_logging() -> None:
    """Detach and close the training logger's handlers."""
    logger = get_logger()
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class MetricsLog:
    """Append-only JSON-lines metrics file (None path: records are dropped)."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path

    def write(self, record: Dict[str, Any]) -> None:
        """Append one record as one line (flushed)."""
        if not self.path:
            return
        line = json.dumps({k: _clean(v) for k, v in record.items()}, sort_keys=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def rewind(self, epoch: int) -> int:
        """Keep only records of epochs before ``epoch`` (and checkpoints up to ``epoch``);
        returns the number of records dropped."""
        if not self.path or not os.path.isfile(self.path):
            return 0
        kept: List[str] = []
        dropped = 0
        for record, line in _records_with_lines(self.path):
            if record is not None and _belongs_before(record, epoch):
                kept.append(line)
            else:
                dropped += 1
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))
        return dropped


def _belongs_before(record: Dict[str, Any], epoch: int) -> bool:
    if record.get("kind") == "checkpoint":
        return int(record.get("epoch", 0)) <= epoch
    return int(record.get("epoch", 0)) < epoch


def _records_with_lines(path: str) -> Iterator[tuple]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            yield (record if isinstance(record, dict) else None), line


def read_metrics(path: str) -> List[Dict[str, Any]]:
    """All well-formed records of a JSON-lines metrics file (torn lines are skipped)."""
    return [record for record, _ in _records_with_lines(path) if record is not None]


class EpochBar:
    """tqdm bar over the batches of one epoch showing loss, samples/s and lr.

    Disabled (no output) on workers other than the chief.
    """

    def __init__(self, epoch: int, total: int, enabled: bool) -> None:
        self._bar = tqdm(total=total, desc=f"epoch {epoch}", unit="batch", dynamic_ncols=True,
                         disable=not enabled, leave=True, file=sys.stderr, mininterval=0.5)

    def update(self, loss: float, samples_per_sec: float, lr: float) -> None:
        """Advance by one batch."""
        self._bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{samples_per_sec:.2f}", lr=f"{lr:.3g}",
                              refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()
