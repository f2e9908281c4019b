"""symbols/systems/: committed system symbols are current, and mx.mod.Module on a system's symbol
computes softmax of the Gluon network's scores (loss: the released normalised SoftmaxOutput)."""
import json
import os
import warnings

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np
import pytest

from io_helpers import REPO
from tusimple_duc.io.names import symbol_name
from tusimple_duc.io.system_symbols import SYSTEMS_FOLDER, system_symbol_text, system_training_symbol
from tusimple_duc.models.systems import SYSTEM_PRESETS, build_system, get_system_spec

FOLDER = os.path.join(REPO, "symbols", SYSTEMS_FOLDER)


def structure(text):
    graph = json.loads(text)
    graph.get("attrs", {}).pop("mxnet_version", None)
    return graph


def test_one_committed_file_per_system_preset():
    assert sorted(os.listdir(FOLDER)) == sorted(f"{name}-symbol.json" for name in SYSTEM_PRESETS)


@pytest.mark.parametrize("name", [n for n in SYSTEM_PRESETS if n.startswith("tiny")] + ["fcn8s_vgg16", "unet"])
def test_committed_symbol_is_what_the_code_generates(name):
    with open(os.path.join(FOLDER, f"{name}-symbol.json")) as handle:
        assert structure(handle.read()) == structure(system_symbol_text(name)), (
            f"symbols/systems/{name}-symbol.json is stale: run python tools/generate_symbols.py")


@pytest.mark.parametrize("name", ["tiny_fcn8s", "tiny_pspnet", "tiny_deeplabv1", "tiny_segnet"])
def test_module_on_the_symbol_computes_the_gluon_network(name):
    net = build_system(get_system_spec(name, num_classes=4))
    rng = np.random.RandomState(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.initialize()
        x = mx.nd.array(rng.uniform(-50, 50, (1, 3, 40, 48)))
        net(x)
        for param in net.collect_params().values():
            if not param.name.endswith("running_var"):
                param.set_data(mx.nd.array(rng.normal(0, 0.2, param.shape)))
        expected = mx.nd.softmax(net(x), axis=1).asnumpy()
        values = {symbol_name(name): param.data() for name, param in net.collect_params().items()}
        symbol = system_training_symbol(net)
        module = mx.mod.Module(symbol, data_names=["data"], label_names=["seg_loss_label"],
                               context=mx.cpu())
        module.bind(data_shapes=[("data", x.shape)], for_training=False)
        module.set_params({n: values[n] for n in symbol.list_arguments() if n in values},
                          {n: values[n] for n in symbol.list_auxiliary_states()})
    module.forward(mx.io.DataBatch([x]), is_train=False)
    np.testing.assert_allclose(module.get_outputs()[0].asnumpy(), expected, rtol=1e-4, atol=1e-5)
