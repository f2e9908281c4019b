"""VGG-16 backbone variants: sizes per system and the model-zoo ImageNet layout."""
import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np
import pytest
from mxnet.gluon.model_zoo import vision

from tusimple_duc.models.vgg import VGG16Backbone, output_size, vgg16_model_zoo_arrays

# Sizes worked by hand from each system's layer list (67 x 95 input):
# fcn: +198 -> 265x293, five ceil halvings -> 9x10, fc6 7x7 valid -> 3x4
# dilated: three ceil halvings -> 9x12; largefov: floor(s/2)+1 three times -> 10x13
# segnet conv5_3: four ceil halvings -> 5x6
EXPECTED = {"fcn": [(34, 37), (17, 19), (3, 4)], "dilated": [(9, 12)], "largefov": [(10, 13)],
            "segnet": [(67, 95), (34, 48), (17, 24), (9, 12), (5, 6)]}


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_endpoint_sizes_at_odd_input(variant):
    net = VGG16Backbone(variant, width=2, fc_channels=4)
    net.initialize()
    outputs = net(mx.nd.random.uniform(shape=(1, 3, 67, 95)))
    assert [o.shape[2:] for o in outputs] == EXPECTED[variant]
    assert [o.shape[1] for o in outputs] == list(net.endpoint_channels)
    assert (output_size(variant, 67), output_size(variant, 95)) == EXPECTED[variant][-1]


def test_largefov_matches_deeplab_sizes():
    """DeepLab's prototxt: 321 -> 161 -> 81 -> 41; 513 -> 65."""
    assert output_size("largefov", 321) == 41 and output_size("largefov", 513) == 65
    net = VGG16Backbone("largefov", width=1, fc_channels=2)
    (sym,) = net(mx.sym.var("data"))
    assert sym.infer_shape(data=(1, 3, 321, 513))[1][0][2:] == (41, 65)


def test_parameter_names_are_caffe_names():
    names = set(VGG16Backbone("fcn", width=1, fc_channels=2).collect_params())
    expected = {f"conv{s}_{i}_{leaf}" for s, n in zip(range(1, 6), (2, 2, 3, 3, 3))
                for i in range(1, n + 1) for leaf in ("weight", "bias")}
    assert names == expected | {"fc6_weight", "fc6_bias", "fc7_weight", "fc7_bias"}
    segnet = set(VGG16Backbone("segnet", width=1).collect_params())
    assert "conv4_3_bn_running_var" in segnet and "fc6_weight" not in segnet


FC = 8  # fc width of the test networks (the zoo's 4096 would make the test slow)


def _small_zoo_file(seed=0):
    """A model-zoo VGG-16 of conv widths 2..16: its conv layers initialised (the first 23
    layers run as the zoo network), and the file dict with the zoo's own structural keys,
    dense layers given random ``FC``-wide arrays. Returns (zoo, {key: NDArray})."""
    zoo = vision.VGG([2, 2, 3, 3, 3], [2, 4, 8, 16, 16])
    mx.random.seed(seed)
    for layer in list(zoo.features)[:31]:
        layer.initialize(mx.init.Normal(0.1))
    zoo.features[:31](mx.nd.zeros((1, 3, 32, 32)))
    rng = np.random.RandomState(seed)
    dense_shapes = {"features.31": (FC, 16 * 7 * 7), "features.33": (FC, FC), "output": (5, FC)}
    arrays = {}
    for key, param in zoo._collect_params_with_prefix().items():
        base, leaf = key.rsplit(".", 1)
        if base in dense_shapes:
            shape = dense_shapes[base] if leaf == "weight" else dense_shapes[base][:1]
            arrays[key] = mx.nd.array(rng.normal(0, 0.1, shape))
        elif leaf == "bias":  # the zoo initialises biases to zero
            arrays[key] = mx.nd.array(rng.normal(0, 0.1, param.shape))
            param.set_data(arrays[key])
        else:
            arrays[key] = param.data()
    return zoo, arrays


def _load(net, arrays):
    net.initialize()
    params = net.collect_params()
    assert set(arrays) == set(params)
    for name, value in arrays.items():
        params[name].set_data(mx.nd.array(value))


def test_model_zoo_file_maps_onto_backbone(tmp_path):
    zoo, arrays = _small_zoo_file()
    mx.nd.save(str(tmp_path / "vgg16.params"), arrays)
    arrays = mx.nd.load(str(tmp_path / "vgg16.params"))
    net = VGG16Backbone("dilated", width=2, fc_channels=FC)
    _load(net, vgg16_model_zoo_arrays(arrays, net))
    # convs: our stages 1-4 (with the 2x2 pools) against the zoo's features up to conv4_3's ReLU
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 32, 32))
    ours = x
    for s in range(4):
        ours = net.stages[s](ours)
        if s < 3:
            ours = mx.nd.Pooling(ours, kernel=(2, 2), stride=(2, 2), pool_type="max")
    np.testing.assert_allclose(ours.asnumpy(), zoo.features[:23](x).asnumpy(), rtol=1e-5, atol=1e-6)
    # fc6 / fc7 as convs (FCN: 7x7 without padding) on a 7x7 pool5 = the dense layers (NumPy)
    net = VGG16Backbone("fcn", width=2, fc_channels=FC)
    _load(net, vgg16_model_zoo_arrays(arrays, net))
    pool5 = np.random.RandomState(3).uniform(0, 1, (2, 16, 7, 7)).astype(np.float32)
    w6, b6 = arrays["features.31.weight"].asnumpy(), arrays["features.31.bias"].asnumpy()
    w7, b7 = arrays["features.33.weight"].asnumpy(), arrays["features.33.bias"].asnumpy()
    dense6 = np.maximum(pool5.reshape(2, -1) @ w6.T + b6, 0)
    dense7 = np.maximum(dense6 @ w7.T + b7, 0)
    fc6 = net.fc[1](net.fc[0](mx.nd.array(pool5)))
    fc7 = net.fc[4](net.fc[3](fc6))
    np.testing.assert_allclose(fc6.asnumpy().reshape(2, -1), dense6, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fc7.asnumpy().reshape(2, -1), dense7, rtol=1e-4, atol=1e-5)


def test_legacy_names_and_largefov_decimation():
    _, structural = _small_zoo_file(1)
    legacy = {}
    convs = [k for k in structural if k.endswith("weight") and structural[k].ndim == 4]
    denses = ["features.31", "features.33"]
    for kind, bases in (("conv", [k.rsplit(".", 1)[0] for k in convs]), ("dense", denses)):
        for i, base in enumerate(bases):
            for leaf in ("weight", "bias"):
                legacy[f"vgg0_{kind}{i}_{leaf}"] = structural[f"{base}.{leaf}"]
    net = VGG16Backbone("largefov", width=2, fc_channels=2)
    mapped = vgg16_model_zoo_arrays(legacy, net)
    from_structural = vgg16_model_zoo_arrays(structural, net)
    assert set(mapped) == set(from_structural)
    assert all(np.array_equal(mapped[k], v) for k, v in from_structural.items())
    _load(net, mapped)
    dense6 = structural["features.31.weight"].asnumpy()   # (FC, 16 * 7 * 7), (c, y, x) order
    fc6 = mapped["fc6_weight"]
    assert fc6.shape == (FC // 4, 16, 3, 3) and mapped["fc7_weight"].shape == (FC // 4, FC // 4, 1, 1)
    # filter 1 <- dense row 4; tap (1, 2) <- (3, 6) of the 7x7 grid; input channel 5
    assert fc6[1, 5, 1, 2] == dense6[4, 5 * 49 + 3 * 7 + 6]
    assert mapped["fc7_weight"][1, 1, 0, 0] == structural["features.33.weight"].asnumpy()[4, 4]
