"""Learning-rate schedules in closed form: the released ``step`` and ``poly`` policies.

Every value is a pure function of the 1-based number ``n`` of the parameter update
about to be applied, counted from the start of *this run* (the released solver
started its MXNet scheduler at 0 even when fine-tuning from ``load_epoch``). The
trainer sets the learning rate before every update, so a resumed run continues at
exactly the same position.

``step`` (MXNet ``FactorScheduler(step, factor)``, ``step = max(int(E * lr_factor_epoch), 1)``
updates, ``E`` = updates per epoch)::

    lr(n) = max(lr * lr_factor ** k, 1e-8),   k = max(0, ceil(n / step) - 1)

i.e. the first reduction applies to update ``step + 1`` (MXNet reduces while
``n > count + step``).

``poly`` (the released ``PolyScheduler``, ``N = E * num_epochs`` updates)::

    lr(n) = max(lr * (1 - n / N) ** power, 1e-8)

The released code took ``power`` from ``lr_factor``; the paper uses 0.9. ``poly_power``
unset keeps the released meaning, set it to 0.9 for the paper's. Updates past ``N``
(only possible when ``num_epochs`` is raised on resume) stay at the floor.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from tusimple_duc.config import ModelSection
from tusimple_duc.errors import ConfigError

#: Lowest learning rate of both policies (MXNet's and the released ``stop_factor_lr``).
LR_FLOOR = 1e-8


def step_lr(base_lr: float, update: int, step: int, factor: float, floor: float = LR_FLOOR) -> float:
    """MXNet ``FactorScheduler`` learning rate of update ``update`` (1-based)."""
    reductions = max(0, math.ceil(update / step) - 1)
    return max(base_lr * factor ** reductions, floor)


def poly_lr(base_lr: float, update: int, max_updates: int, power: float, floor: float = LR_FLOOR) -> float:
    """Released ``PolyScheduler`` learning rate of update ``update`` (1-based)."""
    remaining = max(0.0, 1.0 - update / max_updates)
    return max(base_lr * remaining ** power, floor)


@dataclass(frozen=True)
class LRSchedule:
    """The learning rate of every update of one run.

    Parameters
    ----------
    policy : 'step' or 'poly'
    base_lr : initial learning rate
    updates_per_epoch : parameter updates per epoch ``E`` (batches per epoch of one worker)
    num_epochs : the config's ``num_epochs`` (poly length ``N = E * num_epochs``)
    factor : ``lr_factor``
    factor_epoch : ``lr_factor_epoch`` (step policy)
    power : poly power in effect
    """

    policy: Literal["step", "poly"]
    base_lr: float
    updates_per_epoch: int
    num_epochs: int
    factor: float
    factor_epoch: float
    power: float

    @property
    def step_updates(self) -> int:
        """Updates between two reductions of the step policy."""
        return max(int(self.updates_per_epoch * self.factor_epoch), 1)

    @property
    def max_updates(self) -> int:
        """Length of the poly schedule in updates."""
        return max(self.updates_per_epoch * self.num_epochs, 1)

    def __call__(self, update: int) -> float:
        """Learning rate of update ``update`` (1-based, counted from the start of the run)."""
        if self.policy == "step":
            return step_lr(self.base_lr, update, self.step_updates, self.factor)
        return poly_lr(self.base_lr, update, self.max_updates, self.power)


def check_schedule(model: ModelSection, source: str = "<config>") -> None:
    """Reject settings the released schedulers rejected (:class:`ConfigError` naming the key):
    a step ``lr_factor`` above 1, a released-meaning poly power (``lr_factor``) above 1, or a
    ``poly_power`` that is not positive."""
    if model.lr_policy == "step" and model.lr_factor > 1:
        raise ConfigError(f"{source}: [model] lr_factor: the step policy multiplies the lr by it, "
                          f"must be <= 1, got {model.lr_factor}")
    if model.lr_policy == "poly":
        if model.poly_power is None and model.lr_factor > 1:
            raise ConfigError(f"{source}: [model] lr_factor: is the poly power when poly_power is unset "
                              f"(released meaning), must be <= 1, got {model.lr_factor}")
        if model.poly_power is not None and model.poly_power <= 0:
            raise ConfigError(f"{source}: [model] poly_power: must be > 0, got {model.poly_power}")


def schedule_from_config(model: ModelSection, updates_per_epoch: int, source: str = "<config>") -> LRSchedule:
    """The :class:`LRSchedule` of a ``[model]`` section (checked by :func:`check_schedule`)."""
    check_schedule(model, source)
    if updates_per_epoch < 1:
        raise ConfigError(f"{source}: [data] train_list: gives no batch per epoch "
                          f"(check batch_size, last_batch and the number of workers)")
    power = model.lr_factor if model.poly_power is None else model.poly_power
    return LRSchedule(policy=model.lr_policy, base_lr=model.lr, updates_per_epoch=updates_per_epoch,
                      num_epochs=model.num_epochs, factor=model.lr_factor,
                      factor_epoch=model.lr_factor_epoch, power=power)
