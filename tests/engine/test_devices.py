"""Several devices == one device on the same global batch; BatchNorm frozen or learning."""
import mxnet as mx
import numpy as np
import pytest

from engine_helpers import tiny_config
from tusimple_duc.engine.batches import sampling_spec, train_iterator
from tusimple_duc.engine.contexts import DeviceSetup
from tusimple_duc.engine.network import build_network, initialise
from tusimple_duc.engine.schedules import schedule_from_config
from tusimple_duc.engine.trainer import SegmentationTrainer


def make_trainer(config, contexts, kvstore):
    net = build_network(config)
    initialise(net, contexts, config.env.seed, (1, 3, 64, 64))
    net.hybridize(static_alloc=True)
    schedule = schedule_from_config(config.model, 7)
    return SegmentationTrainer(net, DeviceSetup(contexts, kvstore), schedule, config.model,
                               config.network.ignore_label)


def global_batches(config, count):
    net = build_network(config)
    batches = []
    with train_iterator(config, sampling_spec(config, net.spec)) as data:
        epoch = 0
        while len(batches) < count:
            data.set_epoch(epoch)
            batches += [(b.data[0].asnumpy(), b.label[0].asnumpy()) for b in data]
            epoch += 1
    return batches[:count]


@pytest.mark.parametrize("devices, kvstore, batch_size", [(2, "local", 4), (2, "device", 3), (3, "local", 2)])
def test_several_cpu_contexts_equal_one_context(synthetic_root, tmp_path, devices, kvstore, batch_size):
    config = tiny_config(synthetic_root, str(tmp_path), f"data.batch_size={batch_size}", "model.lr=0.02",
                         "model.lr_policy=step", "model.lr_factor=0.5", "model.lr_factor_epoch=0.5")
    single = make_trainer(config, [mx.cpu(0)], None)
    multi = make_trainer(config, [mx.cpu(i) for i in range(devices)], kvstore)
    initial = single.parameter_arrays()
    for data, label in global_batches(config, 5):
        one = single.step(data, label)
        many = multi.step(data, label)
        assert many.lr == one.lr and many.valid_pixels == one.valid_pixels
        assert many.loss == pytest.approx(one.loss, rel=1e-5)
    assert single.updates == multi.updates == 5
    # The schedule moved: step of int(7 * 0.5) = 3 updates, update 5 runs at 0.02 * 0.5.
    assert one.lr == pytest.approx(0.01)
    reference = single.parameter_arrays()
    for device in range(devices):
        context = mx.cpu(device)
        for name, param in multi.net.collect_params().items():
            np.testing.assert_allclose(param.data(context).asnumpy(), reference[name], rtol=1e-4, atol=2e-6,
                                       err_msg=f"{name} on {context}")
    moved = [name for name, value in reference.items() if not np.allclose(value, initial[name])]
    assert len(moved) > 10


@pytest.mark.parametrize("global_stats", [True, False])
def test_batchnorm_frozen_or_learning(synthetic_root, tmp_path, global_stats):
    config = tiny_config(synthetic_root, str(tmp_path), f"network.bn_use_global_stats={global_stats}")
    trainer = make_trainer(config, [mx.cpu()], None)
    before = trainer.parameter_arrays()
    data, label = global_batches(config, 1)[0]
    trainer.step(data, label)
    after = trainer.parameter_arrays()
    mean = "conv1_1_3x3_s2/bn_running_mean"
    gamma = "conv1_1_3x3_s2/bn_gamma"
    assert not np.array_equal(before[gamma], after[gamma])  # gamma/beta train in both modes
    assert np.array_equal(before[mean], after[mean]) == global_stats
