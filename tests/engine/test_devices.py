"""Several devices: the released normalisation on real batches; BatchNorm frozen or learning.

Each device's gradient is divided by its own count of valid pixels and the sum by the
per-worker batch size (``SoftmaxOutput(normalization='valid')``, ``rescale_grad = 1/B``).
When every non-empty device of ``k`` holds the same number of valid pixels ``V / k``,
``sum_d grad(CE_d) / (V / k) / B = grad(CE) / V / (B / k)``: ``k`` devices with batch size ``B``
take exactly the step of one device holding the whole batch with batch size ``B / k``
(weight decay and clipping act on the same rescaled gradient). The comparison with
``mx.mod.Module`` itself is in test_original_semantics.py.
"""
import mxnet as mx
import numpy as np
import pytest

from engine_helpers import tiny_config
from tusimple_duc.engine.batches import sampling_spec, train_iterator
from tusimple_duc.engine.contexts import DeviceSetup
from tusimple_duc.engine.network import build_network, initialise
from tusimple_duc.engine.schedules import schedule_from_config
from tusimple_duc.engine.trainer import SegmentationTrainer


def make_trainer(config, contexts, kvstore, batch_size):
    net = build_network(config)
    initialise(net, contexts, config.env.seed, (1, 3, 64, 64))
    net.hybridize(static_alloc=True)
    schedule = schedule_from_config(config.model, 7)
    return SegmentationTrainer(net, DeviceSetup(contexts, kvstore), schedule, config.model,
                               config.network.ignore_label, batch_size)


def global_batches(config, count):
    """``count`` batches of the tiny set with every ignored pixel relabelled 0 (all samples
    then hold equally many valid pixels)."""
    net = build_network(config)
    batches = []
    with train_iterator(config, sampling_spec(config, net.spec)) as data:
        epoch = 0
        while len(batches) < count:
            data.set_epoch(epoch)
            for batch in data:
                label = batch.label[0].asnumpy()
                label[label == config.network.ignore_label] = 0
                batches.append((batch.data[0].asnumpy(), label))
            epoch += 1
    return batches[:count]


# (devices, kvstore, batch size, devices holding samples): with 3 devices and 2 samples the
# third device holds an ignored filler (no valid pixel, no gradient).
@pytest.mark.parametrize("devices, kvstore, batch_size, filled", [(2, "local", 4, 2), (2, "device", 2, 2),
                                                                  (3, "local", 2, 2)])
def test_k_devices_step_as_one_device_with_batch_size_over_k(synthetic_root, tmp_path, devices, kvstore,
                                                             batch_size, filled):
    config = tiny_config(synthetic_root, str(tmp_path), f"data.batch_size={batch_size}", "model.lr=0.004",
                         "model.lr_policy=step", "model.lr_factor=0.5", "model.lr_factor_epoch=0.5")
    single = make_trainer(config, [mx.cpu(0)], None, batch_size // filled)
    multi = make_trainer(config, [mx.cpu(i) for i in range(devices)], kvstore, batch_size)
    initial = single.parameter_arrays()
    for data, label in global_batches(config, 5):
        one = single.step(data, label)
        many = multi.step(data, label)
        assert many.lr == one.lr and many.valid_pixels == one.valid_pixels
        assert many.loss == pytest.approx(one.loss, rel=1e-4)
    assert single.updates == multi.updates == 5
    # The schedule moved: step of int(7 * 0.5) = 3 updates, update 5 runs at 0.004 * 0.5.
    assert one.lr == pytest.approx(0.002)
    reference = single.parameter_arrays()
    for device in range(devices):
        context = mx.cpu(device)
        for name, param in multi.net.collect_params().items():
            np.testing.assert_allclose(param.data(context).asnumpy(), reference[name], rtol=1e-4, atol=1e-5,
                                       err_msg=f"{name} on {context}")
    # The updates moved many parameters by far more than the tolerance (a step with the
    # released B instead of B / k would differ by k times these changes).
    moved = [name for name, value in reference.items() if np.abs(value - initial[name]).max() > 1e-3]
    assert len(moved) > 10


@pytest.mark.parametrize("global_stats", [True, False])
def test_batchnorm_frozen_or_learning(synthetic_root, tmp_path, global_stats):
    config = tiny_config(synthetic_root, str(tmp_path), f"network.bn_use_global_stats={global_stats}")
    trainer = make_trainer(config, [mx.cpu()], None, config.data.batch_size)
    before = trainer.parameter_arrays()
    data, label = global_batches(config, 1)[0]
    trainer.step(data, label)
    after = trainer.parameter_arrays()
    mean = "conv1_1_3x3_s2/bn_running_mean"
    gamma = "conv1_1_3x3_s2/bn_gamma"
    assert not np.array_equal(before[gamma], after[gamma])  # gamma/beta train in both modes
    assert np.array_equal(before[mean], after[mean]) == global_stats
