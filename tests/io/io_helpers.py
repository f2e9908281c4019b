"""Shared helpers of the io tests: random released checkpoints, GluonCV import, tools."""
from __future__ import annotations

import importlib.util
import os
import sys
from typing import Dict

import mxnet as mx
import numpy as np
import released_manifest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELEASED = "resnet101_duc_hdc_released"

# The released test protocol's facts (released_model.md), written out independently of the code.
RELEASED_STAGE4_DILATIONS = (2, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5, 9, 1, 2, 5)
RELEASED_STAGE5_DILATIONS = (5, 9, 17)


def random_value(name: str, shape, rng: np.random.RandomState) -> np.ndarray:
    """A plausible random array for a parameter (positive variances, scaled weights)."""
    shape = tuple(shape)
    if name.endswith(("moving_var", "running_var")):
        value = rng.uniform(0.5, 1.5, shape)
    elif name.endswith("gamma"):
        value = rng.uniform(0.5, 1.0, shape)
    elif name.endswith("weight"):
        value = rng.standard_normal(shape) / np.sqrt(max(1, int(np.prod(shape[1:]))))
    else:
        value = rng.standard_normal(shape) * 0.1
    return value.astype(np.float32)


def released_arrays(seed: int = 0) -> Dict[str, mx.nd.NDArray]:
    """Random arrays under every released key (``arg:<name>``, ``aux:<name>``)."""
    rng = np.random.RandomState(seed)
    tables = {"arg": released_manifest.ARG, "aux": released_manifest.AUX}
    return {f"{kind}:{name}": mx.nd.array(random_value(name, shape, rng))
            for kind, table in tables.items() for name, shape in table.items()}


def randomize(net, seed: int = 0) -> None:
    """Give every (initialised) parameter of ``net`` a random value."""
    rng = np.random.RandomState(seed)
    for name, param in net.collect_params().items():
        param.set_data(mx.nd.array(random_value(name, param.shape, rng)))


def random_checkpoint(folder, preset: str, epoch: int, seed: int, side: int, **model_options):
    """(prefix, net): ``preset`` built at ``side`` x ``side``, randomised with ``seed`` (:func:`randomize`) and
    saved as checkpoint ``epoch`` of ``<folder>/<preset>``."""
    from tusimple_duc.io.checkpoint import save_checkpoint
    from tusimple_duc.models.presets import get_model

    net = get_model(preset, **model_options)
    net.initialize()
    net(mx.nd.zeros((1, 3, side, side)))
    randomize(net, seed=seed)
    prefix = os.path.join(str(folder), preset)
    save_checkpoint(net, prefix, epoch)
    return prefix, net


def numpy_softmax(net, x: np.ndarray) -> np.ndarray:
    """Independent expectation: NumPy softmax over the classes of the Gluon scores (N, L, h, w)."""
    scores = net(mx.nd.array(x)).asnumpy().astype(np.float64)
    prob = np.exp(scores - scores.max(axis=1, keepdims=True))
    return prob / prob.sum(axis=1, keepdims=True)


def import_gluoncv():
    """``import gluoncv`` with torch hidden: GluonCV 0.10/0.11 raises at import when
    torch >= 2 is installed, and its MXNet model zoo does not need torch."""
    if "gluoncv" in sys.modules:
        return sys.modules["gluoncv"]
    missing = object()
    saved = sys.modules.get("torch", missing)
    sys.modules["torch"] = None  # makes `import torch` raise ImportError
    try:
        import gluoncv
    finally:
        if saved is missing:
            del sys.modules["torch"]
        else:
            sys.modules["torch"] = saved
    return gluoncv


def load_tool(name: str):
    """Import ``tools/<name>.py`` as a module (tests call its ``main``)."""
    path = os.path.join(REPO, "tools", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"tool_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def module_forward(prefix: str, epoch: int, x: np.ndarray) -> np.ndarray:
    """Run a checkpoint with ``mx.mod.Module`` the way the original tester did: ``Module.load``,
    bind ``data`` only with ``for_training=False``, forward one batch."""
    import warnings

    with warnings.catch_warnings():  # Module.load's default label name 'softmax_label' is absent
        warnings.simplefilter("ignore")
        module = mx.mod.Module.load(prefix, epoch, context=mx.cpu())
        module.bind(data_shapes=[("data", x.shape)], for_training=False)
    module.forward(mx.io.DataBatch([mx.nd.array(x)]), is_train=False)
    return module.get_outputs()[0].asnumpy()


def assert_runtimes_equal_silently(onnx_path: str, x: np.ndarray, expected: np.ndarray, capfd) -> None:
    """ONNX Runtime (log at severity info) and OpenVINO (f32) both load ``onnx_path`` without a
    warning and their output for ``x`` equals ``expected`` within 1e-4."""
    import warnings

    import onnxruntime
    import openvino

    capfd.readouterr()
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 1  # info and above reach stderr: a warning would be seen
    session = onnxruntime.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"data": x})
    log_text = capfd.readouterr().err
    assert "[W:" not in log_text and "[E:" not in log_text
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = openvino.Core().compile_model(onnx_path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    np.testing.assert_allclose(compiled(x)[0], expected, rtol=0, atol=1e-4)
    assert "warning" not in capfd.readouterr().err.lower()
