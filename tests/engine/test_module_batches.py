"""Batches as the original pipeline has them: ``Module``'s split over devices, the released
loader's validation batches, and a train.py run on two CPU devices with BatchNorm learning."""
import json
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet.executor_manager import _split_input_slice

from engine_helpers import tiny_config
from tusimple_duc.engine.batches import (device_slices, module_slice_sizes, sampling_spec, validation_iterator)
from tusimple_duc.engine.network import build_network
from tusimple_duc.engine.run import train
from tusimple_duc.engine.run_dirs import log_path
from tusimple_duc.engine.trainer import SegmentationTrainer
from tusimple_duc.errors import ConfigError
from tusimple_duc.io.checkpoint import read_params

IGNORE = 255


def module_sizes(batch_size, devices):
    """Samples per device of MXNet's own ``_split_input_slice`` (None when it refuses)."""
    try:
        return [s.stop - s.start for s in _split_input_slice(batch_size, [1] * devices)]
    except ValueError:
        return None


def test_slice_sizes_are_modules():
    pairs = [(b, d) for b in range(1, 41) for d in range(1, 9)]
    assert all(module_slice_sizes(b, d) == module_sizes(b, d) for b, d in pairs)
    # Cases where Module differs from an even split, and one it refuses.
    assert module_slice_sizes(5, 3) == [2, 2, 1] and module_slice_sizes(7, 4) == [2, 2, 2, 1]
    assert module_slice_sizes(6, 4) is None and module_slice_sizes(1, 2) is None


def test_device_slices_follow_module_and_keep_the_order():
    data = np.arange(5, dtype=np.float32).reshape(5, 1, 1, 1)
    label = np.arange(5, dtype=np.float32).reshape(5, 1, 1)
    pieces = device_slices(data, label, 3, IGNORE)
    assert [len(x) for x, _ in pieces] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([y for _, y in pieces]), label)
    # A last partial batch Module could not split (6 over 4): sizes 2, 2, 1, 1.
    six = device_slices(data[:1].repeat(6, 0), label[:1].repeat(6, 0), 4, IGNORE)
    assert [len(x) for x, _ in six] == [2, 2, 1, 1]


def test_validation_drops_the_last_partial_batch(synthetic_root, tmp_path):
    """7 validation lines in batches of 2: 3 full batches, as the released loader's
    ``_get_next`` (it stops when ``current + batch_size > data_num``)."""
    config = tiny_config(synthetic_root, str(tmp_path), "data.use_val=True")
    assert sum(1 for _ in open(config.data.val_list)) == 7
    spec = sampling_spec(config, build_network(config).spec)
    with validation_iterator(config, spec) as batches:
        batches.set_epoch(0)
        sizes = [batch.data[0].shape[0] for batch in batches]
    assert sizes == [2, 2, 2]


def test_batch_module_cannot_split_is_refused(synthetic_root, tmp_path):
    config = tiny_config(synthetic_root, str(tmp_path), "env.cpus=4", "data.batch_size=6")
    with pytest.raises(ConfigError) as err:
        train(config)
    assert "[data] batch_size: 6 samples cannot be split over 4 devices" in str(err.value)
    assert "\n" not in str(err.value) and not os.listdir(tmp_path)


def test_two_devices_uneven_batch_learning_batchnorm(synthetic_root, tmp_path, monkeypatch):
    """train.py's path with 3 samples over 2 CPU devices, BatchNorm learning and
    ``eval_metric = acc``: after every epoch (checkpoint or not) both devices hold the same
    statistics, and the checkpoint holds them."""
    after_epoch = []
    average = SegmentationTrainer.average_over_devices

    def spy(trainer):
        before = {n: [d.asnumpy() for d in p.list_data()] for n, p in trainer.net.collect_params().items()}
        average(trainer)
        after = {n: [d.asnumpy() for d in p.list_data()] for n, p in trainer.net.collect_params().items()}
        after_epoch.append((before, after))

    monkeypatch.setattr(SegmentationTrainer, "average_over_devices", spy)
    config = tiny_config(synthetic_root, str(tmp_path), "env.cpus=2", "data.batch_size=3",
                         "network.bn_use_global_stats=False", "network.bn_momentum=0.9", "model.eval_metric=acc",
                         "model.num_epochs=2", "model.checkpoint_interval=2", "data.use_val=True",
                         "data.scale_factors=1", "model.log_interval=100")
    result = train(config)
    assert len(after_epoch) == 2  # after epoch 0 (no checkpoint) and epoch 1
    mean = "conv1_1_3x3_s2/bn_running_mean"
    for before, after in after_epoch:
        assert not np.array_equal(*before[mean])  # each device moved its own statistics
        expected = (before[mean][0] + before[mean][1]) / 2
        for copy in after[mean]:
            np.testing.assert_allclose(copy, expected, rtol=1e-6, atol=1e-7)
    saved = read_params(result.checkpoint)["aux:conv1_1_3x3_s2/bn_moving_mean"].asnumpy()
    np.testing.assert_array_equal(saved, after_epoch[-1][1][mean][0])
    records = [json.loads(line) for line in open(os.path.join(result.run_dir, "tiny_duc_hdc-metrics.jsonl"))]
    for kind in ("epoch", "val"):
        values = [r["accuracy"] for r in records if r["kind"] == kind]
        assert len(values) == 2 and all(0 <= v <= 1 for v in values), kind
    assert result.updates == 8  # 14 training lines: 4 batches of 3 per epoch


def test_validation_list_shorter_than_a_batch_warns(synthetic_root, tmp_path):
    val_list = os.path.join(synthetic_root, "lists", "val.lst")  # one line, batches of 2
    config = tiny_config(synthetic_root, str(tmp_path), "data.use_val=True", f"data.val_list={val_list}",
                         "model.num_epochs=1", "model.log_interval=100")
    result = train(config)
    assert np.isnan(result.validation["loss"]) and np.isnan(result.validation["acc_ignore"])
    log = open(log_path(result.run_dir, "tiny_duc_hdc")).read()
    assert f"[data] val_list {val_list}: 1 sample(s), fewer than one batch of 2" in log
