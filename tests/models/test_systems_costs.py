"""The FLOP counter (``count_network_macs``) on every comparison-system preset: it covers every
layer of the 15 full presets, and on the tiny ones its counts equal a count from the layer
shapes Gluon observes at run time."""
import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import pytest
from mxnet.gluon import nn

from tusimple_duc.models.flops import count_network_macs
from tusimple_duc.models.presets import get_model
from tusimple_duc.models.systems import SYSTEM_PRESETS

FULL = [name for name in SYSTEM_PRESETS if not name.startswith("tiny_")]
TINY = [name for name in SYSTEM_PRESETS if name.startswith("tiny_")]
COUNTED = (nn.Conv2D, nn.Conv2DTranspose, nn.BatchNorm)


def _layers(block, found=None):
    """``{layer name: block}`` of every conv, transposed conv and BatchNorm (name: prefix without ``_``)."""
    found = {} if found is None else found
    if isinstance(block, COUNTED):
        found[block.prefix[:-1]] = block
    for child in block._children.values():
        _layers(child, found)
    return found


def test_fifteen_full_presets():
    assert len(FULL) == 15


@pytest.mark.parametrize("preset", FULL)
def test_every_layer_of_a_full_preset_is_counted(preset):
    net = get_model(preset)
    count = count_network_macs(net, 256, 256)  # symbolic: no parameters are allocated
    expected = set(_layers(net))
    if preset.startswith("pspnet"):  # the auxiliary head is not in the inference network
        expected -= {"aux_conv", "aux_conv/bn", "aux_score"}
    assert {layer.name for layer in count.layers} == expected
    assert all(layer.macs > 0 for layer in count.layers)


def _observed_macs(net, x):
    """MACs per kind from the input/output shapes of each layer during an imperative forward."""
    totals = {"conv": 0, "deconv": 0, "batchnorm": 0}

    def hook(block, inputs, output):
        (n, c_in, h_in, w_in), (_, c_out, h_out, w_out) = inputs[0].shape, output.shape
        if isinstance(block, nn.BatchNorm):
            totals["batchnorm"] += c_out * h_out * w_out
            return
        kh, kw = block._kwargs["kernel"]
        if isinstance(block, nn.Conv2DTranspose):  # per input pixel: C_in C_out k^2
            totals["deconv"] += h_in * w_in * c_in * c_out * kh * kw
        else:
            totals["conv"] += h_out * w_out * c_out * (c_in // block._kwargs["num_group"]) * kh * kw

    for block in _layers(net).values():
        block.register_forward_hook(hook)
    net(x)
    return totals


@pytest.mark.parametrize("preset", TINY)
def test_tiny_counts_equal_the_shapes_observed_at_run_time(preset):
    net = get_model(preset, num_classes=3)
    net.initialize()
    height, width = 77, 91
    observed = _observed_macs(net, mx.nd.zeros((1, 3, height, width)))
    count = count_network_macs(get_model(preset, num_classes=3), height, width)
    assert observed["conv"] > 0
    for kind, macs in observed.items():
        assert count.of_kind(kind) == macs, kind
