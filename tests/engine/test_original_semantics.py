"""One engine update == one update of the original pipeline: ``mx.mod.Module`` on the
released-format training symbol (``SoftmaxOutput(normalization='valid')``) with the
released solver's optimizer settings (sgd, momentum, wd, ``rescale_grad = 1 / batch_size``,
``clip_gradient``), on one or two CPU contexts (Module's ``local`` kvstore for two).

The reference never touches the engine: MXNet's Module, SoftmaxOutput and SGD compute it
from the same initial values and batches.
"""
from typing import Dict, List, Tuple

import mxnet as mx
import numpy as np
import pytest

from tusimple_duc.config import ModelSection
from tusimple_duc.engine.contexts import DeviceSetup
from tusimple_duc.engine.schedules import schedule_from_config
from tusimple_duc.engine.trainer import SegmentationTrainer
from tusimple_duc.io.symbol import training_symbol
from tusimple_duc.models.presets import get_model

IGNORE = 255
CLASSES = 5
SIDE = 32           # input side (pixels); the tiny DUC head predicts at SIDE / 2
CELL = 2            # cell width: label map at SIDE / CELL, r = 8 / CELL sub-pixels per cell
LR, MOMENTUM, WD = 0.05, 0.9, 0.01


def initial_values(seed: int) -> Dict[str, np.ndarray]:
    """Gluon-named values of every parameter of the tiny net: Xavier weights, and random
    biases, BatchNorm gammas, betas and statistics (so that weight decay on biases and
    betas would show)."""
    net = get_model("tiny_duc_hdc", num_classes=CLASSES)
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier(rnd_type="uniform", factor_type="in", magnitude=2.34))
    net(mx.nd.zeros((1, 3, SIDE, SIDE)))
    rng = np.random.RandomState(seed)
    values = {}
    for name, param in net.collect_params().items():
        value = param.data().asnumpy()
        if name.endswith(("_bias", "_beta", "_running_mean")):
            value = rng.normal(0, 0.1, value.shape)
        elif name.endswith("_gamma"):
            value = rng.uniform(0.5, 1.5, value.shape)
        elif name.endswith("_running_var"):
            value = rng.uniform(0.5, 2.0, value.shape)
        values[name] = value.astype(np.float32)
    return values


def batches(seed: int, batch_size: int, ignored: str) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Two batches of images (B, 3, SIDE, SIDE) and label maps (B, SIDE/CELL, SIDE/CELL).

    ``ignored``: 'none', 'some' (30 % of the pixels are 255) or 'device' (30 % of the
    first sample and every pixel of the last sample are 255: with two devices, one holds
    no valid pixel).
    """
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(2):
        data = rng.normal(0, 40, (batch_size, 3, SIDE, SIDE)).astype(np.float32)
        label = rng.randint(0, CLASSES, (batch_size, SIDE // CELL, SIDE // CELL)).astype(np.float32)
        if ignored in ("some", "device"):
            label[rng.rand(*label.shape) < 0.3] = IGNORE
        if ignored == "device":
            label[-1] = IGNORE
        out.append((data, label))
    return out


def duc_layout(label: np.ndarray) -> np.ndarray:
    """(B, h*r, w*r) label map -> (B, r*r*h*w), the released loader's reshape/transpose."""
    r = 8 // CELL
    n, height, width = label.shape
    cells = label.reshape(n, height // r, r, width // r, r)
    return cells.transpose(0, 2, 4, 1, 3).reshape(n, -1)


def original_symbol(net) -> mx.sym.Symbol:
    """The released-format training symbol of ``net``. Its variables carry no ``lr_mult`` /
    ``wd_mult`` attributes (the original built them without), so Module's optimizer applies
    its name rule: no weight decay on biases and betas."""
    symbol = training_symbol(net, IGNORE)
    multipliers = [name for name, attrs in symbol.attr_dict().items() if any("_mult" in k for k in attrs)]
    assert not multipliers, multipliers
    return symbol


def symbol_name(gluon_name: str) -> str:
    return gluon_name.replace("_running_mean", "_moving_mean").replace("_running_var", "_moving_var")


def module_updates(values, data_batches, contexts, batch_size, clip) -> List[Dict[str, np.ndarray]]:
    """Parameters after each update of the original pipeline (Module + SoftmaxOutput + SGD)."""
    net = get_model("tiny_duc_hdc", num_classes=CLASSES)
    net.initialize()
    net(mx.nd.zeros((1, 3, SIDE, SIDE)))
    symbol = original_symbol(net)
    label_size = (SIDE // CELL) ** 2
    module = mx.mod.Module(symbol, data_names=["data"], label_names=["seg_loss_label"], context=contexts)
    module.bind(data_shapes=[("data", (batch_size, 3, SIDE, SIDE))],
                label_shapes=[("seg_loss_label", (batch_size, label_size))], for_training=True)
    aux_names = set(symbol.list_auxiliary_states())
    args = {symbol_name(k): mx.nd.array(v) for k, v in values.items() if symbol_name(k) not in aux_names}
    auxs = {symbol_name(k): mx.nd.array(v) for k, v in values.items() if symbol_name(k) in aux_names}
    module.init_params(arg_params=args, aux_params=auxs)
    module.init_optimizer(kvstore="local" if len(contexts) > 1 else None, optimizer="sgd",
                          optimizer_params=dict(learning_rate=LR, momentum=MOMENTUM, wd=WD,
                                                rescale_grad=1.0 / batch_size, clip_gradient=clip))
    history = []
    for data, label in data_batches:
        module.forward_backward(mx.io.DataBatch([mx.nd.array(data)], [mx.nd.array(duc_layout(label))]))
        module.update()
        arg_params, aux_params = module.get_params()
        merged = {**arg_params, **aux_params}
        history.append({name: merged[symbol_name(name)].asnumpy() for name in values})
    return history


def engine_updates(values, data_batches, contexts, batch_size, clip) -> List[Dict[str, np.ndarray]]:
    """Parameters after each update of :class:`SegmentationTrainer`."""
    net = get_model("tiny_duc_hdc", num_classes=CLASSES)
    net.initialize(ctx=contexts)
    net(mx.nd.zeros((1, 3, SIDE, SIDE), ctx=contexts[0]))
    for name, param in net.collect_params().items():
        param.set_data(mx.nd.array(values[name]))
    net.hybridize(static_alloc=True)
    model = ModelSection(lr=LR, lr_policy="step", lr_factor=1.0, momentum=MOMENTUM, weight_decay=WD,
                         clip_gradient=clip)
    devices = DeviceSetup(list(contexts), "local" if len(contexts) > 1 else None)
    trainer = SegmentationTrainer(net, devices, schedule_from_config(model, 100), model, IGNORE, batch_size)
    history = []
    for data, label in data_batches:
        assert trainer.step(data, label) is not None
        history.append(trainer.parameter_arrays())
    return history


def relative_error(engine: Dict[str, np.ndarray], reference: Dict[str, np.ndarray],
                   start: Dict[str, np.ndarray], names) -> float:
    """||engine change - reference change|| / ||reference change|| over ``names``."""
    diff = np.concatenate([(engine[n] - reference[n]).ravel() for n in names])
    change = np.concatenate([(reference[n] - start[n]).ravel() for n in names])
    return float(np.linalg.norm(diff) / np.linalg.norm(change))


@pytest.mark.parametrize("batch_size, devices, ignored, clip", [
    (1, 1, "none", 5.0),
    (1, 1, "some", 5.0),
    (2, 1, "some", 5.0),
    (2, 2, "none", 5.0),
    (2, 2, "device", 5.0),
    (2, 2, "some", 0.002),   # clipping active on many entries
])
def test_updates_equal_module_with_softmaxoutput_valid(batch_size, devices, ignored, clip):
    contexts = [mx.cpu(i) for i in range(devices)]
    start = initial_values(seed=batch_size * 10 + devices)
    data = batches(seed=7, batch_size=batch_size, ignored=ignored)
    reference = module_updates(start, data, contexts, batch_size, clip)
    engine = engine_updates(start, data, contexts, batch_size, clip)
    trained = [n for n in start if not n.endswith(("_running_mean", "_running_var"))]
    no_decay = [n for n in trained if not n.endswith(("_weight", "_gamma"))]
    assert len(no_decay) > 10
    for update in range(2):
        assert relative_error(engine[update], reference[update], start, trained) < 1e-4, update
        # Biases and betas: no weight decay (their whole change is the gradient's).
        assert relative_error(engine[update], reference[update], start, no_decay) < 1e-4, update
    for name in start:
        if name.endswith(("_running_mean", "_running_var")):
            np.testing.assert_array_equal(engine[-1][name], start[name])  # frozen statistics


def test_clipping_and_weight_decay_are_exercised():
    """The clipping case clips, and weight decay moves the decayed parameters measurably:
    the reference comparisons above would fail without either."""
    contexts = [mx.cpu(0)]
    start = initial_values(seed=3)
    data = batches(seed=7, batch_size=2, ignored="some")[:1]
    clipped = module_updates(start, data, contexts, 2, 0.002)[0]
    free = module_updates(start, data, contexts, 2, 5.0)[0]
    moved = {n: np.abs(clipped[n] - start[n]) for n in start}
    # A clipped step changes a weight by at most lr * (clip + wd |w|) (momentum starts at 0).
    weight = "conv1_1_3x3_s2_weight"
    bound = LR * (0.002 + WD * np.abs(start[weight])) + 1e-7
    assert (moved[weight] <= bound).all()
    assert np.abs(free[weight] - start[weight]).max() > 2 * bound.max()
    decayed = LR * WD * np.linalg.norm(start[weight])
    assert decayed > 0.01 * np.linalg.norm(free[weight] - start[weight])
