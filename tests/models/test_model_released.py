"""The released preset is exactly the released checkpoint's architecture."""
import json
from pathlib import Path

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np
import pytest

from tusimple_duc.models import count_parameters, get_model

MANIFEST = Path(__file__).resolve().parents[1] / "fixtures" / "released_param_manifest.json"


@pytest.fixture(scope="module")
def manifest():
    return json.loads(MANIFEST.read_text())


@pytest.fixture(scope="module")
def released():
    return get_model("resnet101_duc_hdc_released")


def _file_name(gluon_name: str) -> str:
    """Gluon BatchNorm statistics -> the checkpoint's aux names."""
    return gluon_name.replace("/bn_running_mean", "/bn_moving_mean").replace(
        "/bn_running_var", "/bn_moving_var")


def test_parameter_count(released, manifest):
    assert count_parameters(released) == 65_038_464 == manifest["num_params"]
    aux = sum(int(np.prod(s)) for s in manifest["aux"].values())
    assert count_parameters(released, include_aux=True) == 65_038_464 + aux


def test_every_name_and_shape(released, manifest):
    expected = {**manifest["arg"], **manifest["aux"]}
    mine = {_file_name(k): list(p.shape) for k, p in released.collect_params().items()}
    assert set(mine) == set(expected)
    assert {k: v for k, v in mine.items() if expected[k] != v} == {}


def test_symbol_arguments_and_aux(released, manifest):
    sym = released(mx.sym.var("data"))
    args = set(sym.list_arguments()) - {"data"}
    aux = {_file_name(a) for a in sym.list_auxiliary_states()}
    assert args == set(manifest["arg"])
    assert aux == set(manifest["aux"])
    arg_shapes, out_shapes, aux_shapes = sym.infer_shape(data=(1, 3, 1024, 2048))
    for name, shape in zip(sym.list_arguments(), arg_shapes):
        if name != "data":
            assert list(shape) == manifest["arg"][name], name
    assert out_shapes == [(1, 19, 512, 1024)]


def test_released_architecture_facts(released):
    assert released.num_classes == 19
    assert released.output_stride == 8 and released.prediction_stride == 2
    rates = released.backbone.rates
    assert rates[4] == (2, 2, 5, 9) + (1, 2, 5, 9) * 4 + (1, 2, 5)
    assert rates[5] == (5, 9, 17)
    assert rates[2] == (1,) * 3 and rates[3] == (1,) * 4
    head_rates = [b._kwargs["dilate"] for b in released.head.aspp.branches]
    assert head_rates == [(6, 6), (12, 12), (18, 18), (24, 24)]
    conv = released.backbone.stage3[0]
    assert conv.reduce.conv._kwargs["stride"] == (2, 2)      # stride on the 1x1 reduce
    assert conv.conv3x3.conv._kwargs["stride"] == (1, 1)
    assert conv.proj.conv._kwargs["stride"] == (2, 2)
    bn = conv.reduce.bn._kwargs
    assert bn["eps"] == 1e-6 and bn["use_global_stats"] and not bn["fix_gamma"]


def test_small_forward(released):
    net = get_model("resnet101_duc_hdc_released")
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, 64, 64))
    assert net.head_scores(x).shape == (1, 19 * 16, 8, 8)
    assert net(x).shape == (1, 19, 32, 32)
