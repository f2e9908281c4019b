"""BatchNorm running statistics follow the original's momentum 0.9995 (Gluon and symbol alike)."""
import json

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np

from tusimple_duc.io.symbol import training_symbol
from tusimple_duc.models.presets import get_model, get_spec


def test_learning_batchnorm_moves_its_statistics_by_five_ten_thousandths():
    net = get_model("tiny_duc_hdc", bn_use_global_stats=False)
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(np.random.RandomState(0).uniform(-1, 1, (2, 3, 32, 32)))
    net(x)
    stem_conv = net.backbone.stem.convs[0]
    stem_conv.bn.running_mean.set_data(mx.nd.ones((8,)))
    conv_out = stem_conv.conv(x).asnumpy()
    with mx.autograd.record(train_mode=True):
        out = net(x)
    out.backward()  # MXNet updates the running statistics in the backward pass
    batch_mean = conv_out.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(stem_conv.bn.running_mean.data().asnumpy(),
                               0.9995 * 1.0 + 0.0005 * batch_mean, rtol=1e-6, atol=1e-7)


def test_every_batchnorm_of_the_symbol_has_momentum_0_9995():
    nodes = json.loads(training_symbol(get_spec("tiny_baseline")).tojson())["nodes"]
    momenta = {node["attrs"]["momentum"] for node in nodes if node["op"] == "BatchNorm"}
    assert momenta == {"0.9995"}
