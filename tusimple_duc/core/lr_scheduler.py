"""``PolyScheduler``: the original's poly learning-rate scheduler over :func:`tusimple_duc.engine.schedules.poly_lr`.

``lr(n) = max(origin_lr * (1 - n / max_samples) ** factor, stop_factor_lr)`` for the
``n``-th update (MXNet asks with non-decreasing ``n``). Past ``max_samples`` the rate stays at
``stop_factor_lr`` (the original computed a power of a negative number there).
"""
from __future__ import annotations

import logging

from mxnet.lr_scheduler import LRScheduler

from tusimple_duc.engine.schedules import LR_FLOOR, poly_lr

log = logging.getLogger(__name__)


class PolyScheduler(LRScheduler):
    """Caffe's "poly" policy as an MXNet ``LRScheduler``.

    Parameters
    ----------
    origin_lr : learning rate of update 0.
    max_samples : number of updates over which the rate decays to 0 (>= 1).
    show_num : log the rate every ``show_num`` updates.
    factor : the power (<= 1; the paper's 0.9).
    stop_factor_lr : lowest learning rate.
    """

    def __init__(self, origin_lr: float, max_samples: int, show_num: int = 10, factor: float = 1,
                 stop_factor_lr: float = LR_FLOOR) -> None:
        super().__init__(base_lr=origin_lr)
        if max_samples < 1:
            raise ValueError("Schedule max time must be greater or equal than 1 round")
        if factor > 1.0:
            raise ValueError("Factor must be no more than 1 to make lr reduce")
        self.max_samples = max_samples
        self.factor = factor
        self.stop_factor_lr = stop_factor_lr
        self.count = 0
        self.origin_lr = origin_lr
        self.show_num = show_num

    def __call__(self, num_update: int) -> float:
        """Learning rate after ``num_update`` updates (MXNet's count of the most-updated weight).

        As the original: a new value is computed for any ``num_update`` above the last logged
        one (``count``, advanced every ``show_num`` updates); otherwise the last value is kept.
        """
        if num_update > self.count:
            self.base_lr = poly_lr(self.origin_lr, num_update, self.max_samples, self.factor,
                                   floor=self.stop_factor_lr)
            if self.base_lr <= self.stop_factor_lr:
                log.info("Update[%d]: now learning rate arrived at %0.5e, will not change in the future",
                         num_update, self.base_lr)
            elif num_update % self.show_num == 0:
                log.info("Update[%d]: Change learning rate to %0.8e", num_update, self.base_lr)
                self.count = num_update
        return self.base_lr
