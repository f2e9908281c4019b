"""Learning-rate schedules against hand-computed values and MXNet's own FactorScheduler."""
import dataclasses

import mxnet as mx
import pytest

from tusimple_duc.config import ModelSection
from tusimple_duc.engine.schedules import LR_FLOOR, schedule_from_config
from tusimple_duc.errors import ConfigError


def model(**fields):
    return dataclasses.replace(ModelSection(), **fields)


def test_step_policy_hand_computed():
    # Released example: lr 1e-4, x0.5 every 5 epochs; 10 updates per epoch -> step 50 updates.
    schedule = schedule_from_config(model(lr=1e-4, lr_policy="step", lr_factor=0.5, lr_factor_epoch=5), 10)
    assert schedule.step_updates == 50
    expected = {1: 1e-4, 50: 1e-4, 51: 5e-5, 100: 5e-5, 101: 2.5e-5, 250: 6.25e-6, 251: 3.125e-6}
    for update, lr in expected.items():
        assert schedule(update) == pytest.approx(lr, rel=1e-12), update


def test_step_policy_matches_mxnet_factor_scheduler():
    schedule = schedule_from_config(model(lr=0.01, lr_policy="step", lr_factor=0.1, lr_factor_epoch=0.5), 7)
    assert schedule.step_updates == 3  # int(7 * 0.5)
    reference = mx.lr_scheduler.FactorScheduler(step=3, factor=0.1, base_lr=0.01)
    for update in range(1, 40):
        assert schedule(update) == pytest.approx(reference(update), rel=1e-9), update
    # 0.01 * 0.1**6 = 1e-8 is the floor; later reductions stay there.
    assert schedule(19) == pytest.approx(1e-8) and schedule(39) == LR_FLOOR


def test_poly_released_meaning_takes_power_from_lr_factor():
    # lr_factor 0.5, poly_power unset: power 0.5; 10 updates/epoch x 50 epochs = 500 updates.
    schedule = schedule_from_config(model(lr=1e-4, lr_policy="poly", lr_factor=0.5, num_epochs=50), 10)
    assert schedule.max_updates == 500
    assert schedule(1) == pytest.approx(1e-4 * (499 / 500) ** 0.5)
    assert schedule(100) == pytest.approx(8.94427191e-5, rel=1e-8)   # 1e-4 * sqrt(0.8)
    assert schedule(375) == pytest.approx(5e-5, rel=1e-12)          # 1e-4 * sqrt(0.25)
    assert schedule(500) == LR_FLOOR


def test_poly_paper_power_0_9():
    # Paper: lr 2.5e-4, power 0.9, 20 epochs; 100 updates/epoch -> 2000 updates.
    schedule = schedule_from_config(
        model(lr=2.5e-4, lr_policy="poly", lr_factor=0.5, poly_power=0.9, num_epochs=20), 100)
    assert schedule.power == 0.9 and schedule.max_updates == 2000
    assert schedule(1000) == pytest.approx(1.3397168e-4, rel=1e-7)  # 2.5e-4 * 0.5 ** 0.9
    assert schedule(1500) == pytest.approx(7.1795e-5, rel=1e-4)     # 2.5e-4 * 0.25 ** 0.9
    assert schedule(1999) == pytest.approx(2.5e-4 * (1 / 2000) ** 0.9)
    assert schedule(2000) == LR_FLOOR and schedule(2100) == LR_FLOOR


@pytest.mark.parametrize("fields, fragment", [
    (dict(lr_policy="step", lr_factor=2.0), "[model] lr_factor: the step policy"),
    (dict(lr_policy="poly", lr_factor=1.5), "[model] lr_factor: is the poly power"),
    (dict(lr_policy="poly", poly_power=0.0), "[model] poly_power: must be > 0"),
])
def test_rejected_settings_name_the_key(fields, fragment):
    with pytest.raises(ConfigError) as err:
        schedule_from_config(model(**fields), 10, source="x.cfg")
    assert fragment in str(err.value) and str(err.value).startswith("x.cfg: ")
