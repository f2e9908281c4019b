"""Counting the label pixels that ``convert_label`` ignores, across the sample worker processes.

With ``convert_label`` a label value outside the dataset's table becomes ``ignore_label``
(the original's ``replace_city_labels`` started from 255). The samples are made in forked
worker processes, so the counts live in shared memory created before the fork; the training
process reports them in ONE warning, the first time an epoch has any.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
from typing import Tuple

logger = logging.getLogger(__name__)


class OutsideTableTally:
    """Samples and pixels whose label values were outside the table, shared by forked processes.

    Parameters
    ----------
    source : the list file, for the warning.
    table : how the table is named (``LabelCodec.table_name``).
    ignore_label : the training id the pixels became.
    """

    def __init__(self, source: str, table: str, ignore_label: int) -> None:
        self.source = source
        self.table = table
        self.ignore_label = ignore_label
        self._counts = mp.Array("q", 2)  # samples, pixels
        self._reported = False

    def add(self, pixels: int) -> None:
        """Count one sample with ``pixels`` label pixels outside the table (a no-op for 0)."""
        if pixels:
            with self._counts.get_lock():
                self._counts[0] += 1
                self._counts[1] += pixels

    def totals(self) -> Tuple[int, int]:
        """``(samples, pixels)`` counted so far."""
        with self._counts.get_lock():
            return int(self._counts[0]), int(self._counts[1])

    def report(self) -> bool:
        """Log the one warning if anything was counted and none was logged yet; True when logged now."""
        samples, pixels = self.totals()
        if self._reported or not samples:
            return False
        self._reported = True
        logger.warning("%s: %d label pixel(s) in %d sample(s) have values outside the %s; convert_label makes "
                       "them ignore_label %d, as the original did (reported once per run)", self.source, pixels,
                       samples, self.table, self.ignore_label)
        return True
