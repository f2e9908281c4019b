"""Fine-tuning from a checkpoint as the released solver: ``load_epoch > 0`` loads, the
checkpoint's ``-symbol.json`` defines the network, missing parameters keep the initialiser's
values (listed), unexpected ones are an error."""
import logging
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon import nn

from engine_helpers import tiny_config
from tusimple_duc.engine.logs import get_logger
from tusimple_duc.errors import ConfigError
from tusimple_duc.engine.network import build_network, initialise, load_initial_weights
from tusimple_duc.io.checkpoint import save_checkpoint
from tusimple_duc.io.matching import CheckpointMismatchError
from tusimple_duc.io.paramfile import read_params, write_params
from tusimple_duc.models.presets import get_model

CROP = (1, 3, 64, 64)


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def training_log():
    handler, logger = Records(), get_logger()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def saved_checkpoint(folder, epoch=3, **overrides):
    """A tiny_duc_hdc checkpoint (random values) with ``overrides`` of the preset; returns the
    prefix and the Gluon-named values."""
    net = get_model("tiny_duc_hdc", **overrides)
    net.initialize(mx.init.Normal(0.5))
    net(mx.nd.zeros(CROP))
    prefix = os.path.join(folder, "ckpt")
    save_checkpoint(net, prefix, epoch)
    return prefix, {name: p.data().asnumpy() for name, p in net.collect_params().items()}


def loaded_network(config):
    net = build_network(config)
    initialise(net, [mx.cpu()], config.env.seed, CROP)
    initial = {name: p.data().asnumpy() for name, p in net.collect_params().items()}
    description = load_initial_weights(net, config)
    return net, initial, description


def test_load_epoch_zero_trains_from_the_initialiser(synthetic_root, tmp_path):
    prefix, _ = saved_checkpoint(str(tmp_path))
    config = tiny_config(synthetic_root, str(tmp_path), f"model.load_model_prefix={prefix}", "model.load_epoch=0")
    net, initial, description = loaded_network(config)
    assert description is None
    for name, param in net.collect_params().items():
        np.testing.assert_array_equal(param.data().asnumpy(), initial[name])


def test_the_checkpoint_symbol_defines_the_network_and_contradictions_are_logged(synthetic_root, tmp_path,
                                                                                training_log):
    # The checkpoint has no ASPP and 7 classes; the config asks for ASPP 4 and 19 classes.
    prefix, saved = saved_checkpoint(str(tmp_path), aspp=0, num_classes=7)
    config = tiny_config(synthetic_root, str(tmp_path), f"model.load_model_prefix={prefix}", "model.load_epoch=3")
    assert config.network.aspp == 4 and config.network.label_num == 19
    net, _, description = loaded_network(config)
    assert net.spec.aspp == 0 and net.num_classes == 7
    assert description.startswith(f"checkpoint {prefix}-0003.params")
    for name, param in net.collect_params().items():
        np.testing.assert_array_equal(param.data().asnumpy(), saved[name])
    warnings = [line for line in training_log if "defines the network trained" in line]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "aspp: config 4, checkpoint 0" in warnings[0] and "num_classes: config 19, checkpoint 7" in warnings[0]


def test_network_from_config_keeps_the_config_network_and_loads_the_weights(synthetic_root, tmp_path,
                                                                          training_log):
    # Phase 2 of the ResNet-152 recipe: the checkpoint learned BatchNorm, the config freezes it.
    prefix, saved = saved_checkpoint(str(tmp_path), bn_use_global_stats=False)
    config = tiny_config(synthetic_root, str(tmp_path), f"model.load_model_prefix={prefix}", "model.load_epoch=3",
                         "network.bn_use_global_stats=True", "model.network_from=config")
    net, _, _ = loaded_network(config)
    assert net.spec.bn_use_global_stats is True
    for name, param in net.collect_params().items():
        np.testing.assert_array_equal(param.data().asnumpy(), saved[name])
    assert not [line for line in training_log if "defines the network trained" in line]


def test_network_from_rejects_other_values(synthetic_root, tmp_path):
    with pytest.raises(ConfigError, match=r"network_from"):
        tiny_config(synthetic_root, str(tmp_path), "model.network_from=symbol")


def test_parameters_the_checkpoint_lacks_keep_their_initial_values(synthetic_root, tmp_path, training_log):
    prefix, saved = saved_checkpoint(str(tmp_path))
    arrays = read_params(prefix + "-0003.params")
    dropped = ["arg:fc1_cityscapes_c0_bias", "arg:conv5_1_3x3/bn_gamma"]
    write_params(prefix + "-0003.params", {k: v for k, v in arrays.items() if k not in dropped})
    config = tiny_config(synthetic_root, str(tmp_path), f"model.load_model_prefix={prefix}", "model.load_epoch=3")
    net, initial, _ = loaded_network(config)
    values = {name: p.data().asnumpy() for name, p in net.collect_params().items()}
    np.testing.assert_array_equal(values["fc1_cityscapes_c0_bias"], 0)       # Module's bias init
    np.testing.assert_array_equal(values["conv5_1_3x3/bn_gamma"], 1)         # Module's gamma init
    np.testing.assert_array_equal(values["conv5_1_3x3_weight"], saved["conv5_1_3x3_weight"])
    listed = [line for line in training_log if "keep their initial values" in line]
    assert len(listed) == 1 and all(key in listed[0] for key in dropped) and listed[0].startswith("2 parameters")


def test_unexpected_or_reshaped_arrays_are_an_error(synthetic_root, tmp_path):
    prefix, _ = saved_checkpoint(str(tmp_path))
    arrays = read_params(prefix + "-0003.params")
    write_params(prefix + "-0003.params", dict(arrays, **{"arg:extra_weight": mx.nd.zeros((2,))}))
    config = tiny_config(synthetic_root, str(tmp_path), f"model.load_model_prefix={prefix}", "model.load_epoch=3")
    with pytest.raises(CheckpointMismatchError, match=r"1 unexpected \(arg:extra_weight\)"):
        loaded_network(config)
    arrays["arg:fc1_cityscapes_c1_bias"] = mx.nd.zeros((3,))
    write_params(prefix + "-0003.params", arrays)
    with pytest.raises(CheckpointMismatchError, match=r"1 with another shape \(arg:fc1_cityscapes_c1_bias"):
        loaded_network(config)


@pytest.mark.parametrize("overrides, momentum", [((), 0.9995), (("network.bn_momentum=0.9",), 0.9)])
def test_bn_momentum_key_sets_every_batchnorm(synthetic_root, tmp_path, overrides, momentum):
    net = build_network(tiny_config(synthetic_root, str(tmp_path), *overrides))
    found = []

    def collect(block):
        for child in block._children.values():
            if isinstance(child, nn.BatchNorm):
                found.append(child._kwargs["momentum"])
            collect(child)

    collect(net)
    assert len(found) > 20 and set(found) == {momentum}
