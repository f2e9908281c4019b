"""Shared pieces of the comparison-system tests: export round trip, GluonCV import."""
import os
import sys
import warnings

import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))


def import_gluoncv():
    """GluonCV via ``tests/io/io_helpers.import_gluoncv`` (torch hidden)."""
    io_tests = os.path.join(_HERE, "..", "io")
    if io_tests not in sys.path:
        sys.path.append(io_tests)
    from io_helpers import import_gluoncv as import_hidden_torch
    return import_hidden_torch()


def export_round_trip(net, x, tmp_path, name="system"):
    """Hybridize, export to symbol JSON + params, bind with ``mx.mod.Module`` and return
    (Gluon outputs, Module outputs) as lists of NumPy arrays."""
    net.hybridize()
    gluon_out = net(x)
    gluon_out = list(gluon_out) if isinstance(gluon_out, (list, tuple)) else [gluon_out]
    prefix = str(tmp_path / name)
    net.export(prefix, epoch=0)
    sym, args, auxs = mx.model.load_checkpoint(prefix, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = mx.mod.Module(sym, data_names=["data"], label_names=None, context=mx.cpu())
        mod.bind(data_shapes=[("data", x.shape)], for_training=False)
        mod.set_params(args, auxs)
    mod.forward(mx.io.DataBatch([x]), is_train=False)
    return [o.asnumpy() for o in gluon_out], [o.asnumpy() for o in mod.get_outputs()]


def assert_round_trip(net, x, tmp_path, name="system"):
    gluon_out, module_out = export_round_trip(net, x, tmp_path, name)
    assert len(gluon_out) == len(module_out)
    for g, m in zip(gluon_out, module_out):
        np.testing.assert_allclose(m, g, rtol=1e-4, atol=1e-4)  # oneDNN fusion reorders sums
    return gluon_out


def randomize(block, seed=0):
    """Every parameter (BN statistics included) set to reproducible random values."""
    rng = np.random.RandomState(seed)
    for name, param in block.collect_params().items():
        if name.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, param.shape)
        else:
            value = rng.normal(0, 0.3, param.shape)
        param.set_data(mx.nd.array(value))
