"""count_network_macs (from the graph) against the spec-based counter and hand-computed layers."""
import pytest
from mxnet.gluon import HybridBlock, nn

from tusimple_duc.models.flops import count_macs, count_network_macs
from tusimple_duc.models.presets import get_model
from tusimple_duc.models.systems import build_system, get_system_spec


@pytest.mark.parametrize("preset", ["tiny_duc_hdc", "tiny_deconv", "tiny_baseline"])
def test_graph_count_equals_the_spec_count(preset):
    net = get_model(preset, num_classes=3)
    from_graph, from_spec = count_network_macs(net, 64, 96), count_macs(net.spec, 64, 96)
    for kind in ("conv", "deconv", "batchnorm"):
        assert from_graph.of_kind(kind) == from_spec.of_kind(kind)


class ConvDeconv(HybridBlock):
    def __init__(self):
        super().__init__(prefix="")
        with self.name_scope():
            self.conv = nn.Conv2D(4, 3, padding=1, in_channels=3, prefix="conv_")
            self.bn = nn.BatchNorm(in_channels=4, prefix="conv_bn_")
            self.up = nn.Conv2DTranspose(2, 4, strides=2, padding=1, in_channels=4, prefix="up_")

    def hybrid_forward(self, F, x):
        return self.up(self.bn(self.conv(x)))


def test_hand_computed_conv_batchnorm_and_deconv():
    count = count_network_macs(ConvDeconv(), 8, 10)
    assert [(layer.name, layer.kind) for layer in count.layers] == [
        ("conv", "conv"), ("conv_bn", "batchnorm"), ("up", "deconv")]
    assert count.of_kind("conv") == 4 * 3 * 9 * 8 * 10         # C_out C_in k^2 per output pixel
    assert count.of_kind("batchnorm") == 4 * 8 * 10
    assert count.of_kind("deconv") == 8 * 10 * 4 * 2 * 4 * 4    # per input pixel: C_in C_out k^2
    assert count.output_shape == (2, 16, 20)


def test_auxiliary_outputs_are_counted():
    spec = get_system_spec("tiny_pspnet", num_classes=3)
    plain = count_network_macs(build_system(spec), 64, 64)
    with_aux = count_network_macs(build_system(get_system_spec(spec, auxiliary=True)), 64, 64)
    aux_layers = [layer for layer in with_aux.layers if layer.name.startswith("aux_")]
    assert with_aux.gemm - plain.gemm == sum(layer.macs for layer in aux_layers if layer.kind == "conv") > 0
