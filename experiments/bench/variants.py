"""Every measured way of running the network, built inside a worker process.

A variant is built from a :class:`VariantConfig` and exposes ``run()`` (one timed iteration on
its loaded input) and ``probabilities()`` (the last run's class probabilities in the pixel
layout ``(N, L, H/s, W/s)``, or None for variants without one). The timed region of a forward
variant is host input -> host probabilities in the variant's native layout; conversions to the
pixel layout for comparisons happen outside it.

Forward variants (input: a ``(N, 3, H, W)`` float32 ``.npy``):

=========================  =====================================================================
``gluon``                  (a) this project: :class:`~tusimple_duc.inference.fast.FastForward` fp32;
                           for a comparison system test.py's forward (hybridized, static memory)
``gluon-bf16``             the same in bfloat16 (``mx.contrib.amp``)
``gluon-int8``             the same quantized to int8 (calibrated on ``calibration``), the default
                           ``int8_fp32`` groups (head, residual stream, last stage) in fp32
``gluon-int8-residual``    int8 with the head and residual stream fp32, the last stage int8
``gluon-int8-all``         int8 everywhere oneDNN can (``int8_fp32=()``)
``module``                 (b) the original pipeline: ``mx.mod.Module.load`` of the released-format
                           checkpoint (io's symbol JSON), bound for inference; output (N, L, r*r*h*w),
                           a comparison system's (N, L, h, w)
``torch``                  (c) PyTorch eager (``experiments.bench.torch_duc``), channels-last tensors
``torch-nchw``             the same with plain NCHW tensors
``lever-imperative``       Gluon, not hybridized (softmax outside)
``lever-hybridized``       ``net.hybridize()``: cached graph, dynamic memory
``lever-static``           traced graph, ``static_alloc`` + ``static_shape``, no oneDNN fusion
``lever-fused-plain-relu`` + oneDNN fusion, but the models' ``relu`` nodes left as they are
``lever-unpadded-head``    + ReLU rewrite (all levers but the 320-channel head)
``lever-raw-head``         (a) without the DUC rearrangement (softmax over (N, L, r*r, h, w))
=========================  =====================================================================

``gluon`` run with ``OMP_NUM_THREADS`` = half the logical CPUs (MXNet's default) is the thread
lever; the suite sets that in the worker's environment.

Deployment backends (OpenVINO, ONNX Runtime) on the exported ONNX, bare and through the
predictor: :mod:`experiments.bench.backend_variants`.

Other variants: ``predict-whole`` / ``predict-sliding`` (one ``Predictor.predict`` of a uint8
image with the fast forward, whole image or ``[inference]``-default 800x800 windows, stride 600)
and ``train-step`` (one engine SGD update on a crop, batch 1).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import mxnet as mx
import numpy as np

from experiments.bench.backend_variants import (BARE_VARIANTS, IMAGE_VARIANTS, BareOpenVINOImageVariant,
                                                 PredictOpenVINOVariant, PredictorRun, bare_forward, geometry_net)
from tusimple_duc import layout
from tusimple_duc.config import load_train_config
from tusimple_duc.inference.backends import prediction_layout
from tusimple_duc.inference.fast import INT8_FP32_DEFAULT
from tusimple_duc.io.export import is_system
from tusimple_duc.io.checkpoint import load_checkpoint, params_path
from tusimple_duc.models import build_model, get_model
from tusimple_duc.models.from_config import spec_from_train_config

#: int8 variants and the layer groups each keeps in fp32
INT8_VARIANTS: Dict[str, Tuple[str, ...]] = {"gluon-int8": INT8_FP32_DEFAULT,
                                             "gluon-int8-residual": ("head", "residual"),
                                             "gluon-int8-all": ()}
FORWARD_VARIANTS = ("gluon", "gluon-bf16", *INT8_VARIANTS, "module", "torch", "torch-nchw",
                    "lever-imperative", "lever-hybridized", "lever-static",
                    "lever-fused-plain-relu", "lever-unpadded-head", "lever-raw-head")
OTHER_VARIANTS = ("predict-whole", "predict-sliding", "train-step", *BARE_VARIANTS, *IMAGE_VARIANTS)
SLIDING_WINDOW = (800, 800)
SLIDING_STRIDE = (600, 600)


@dataclass(frozen=True)
class VariantConfig:
    """What a worker builds.

    variant : a name of :data:`FORWARD_VARIANTS` or :data:`OTHER_VARIANTS`.
    preset, prefix, epoch : the network and its released-format checkpoint.
    input : ``.npy`` network input (forward variants), ``.png`` image (predict), or ``.npz`` with
        ``data`` (1, 3, H, W) and ``label`` (1, H/s, W/s) trainIds (train-step).
    calibration, calibration_mode : int8 only: ``.npy`` (N, 3, H, W) inputs and ``naive``/``entropy``
        (the backend int8 variants calibrate ``naive``).
    onnx : backend variants only: the ONNX export of the checkpoint.
    int8_cache : backend int8 variants: stem of the quantized-model cache file (None: quantized
        in the worker, not kept).
    """

    variant: str
    preset: str
    prefix: str
    epoch: int
    input: str
    calibration: Optional[str] = None
    calibration_mode: str = "naive"
    onnx: Optional[str] = None
    int8_cache: Optional[str] = None

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "VariantConfig":
        return cls(**values)


def network(preset: str):
    """The Gluon network of a preset name or of a training config (``*.cfg``: its [network])."""
    if preset.endswith(".cfg"):
        return build_model(spec_from_train_config(load_train_config(preset)))
    return get_model(preset)


def load_net(config: VariantConfig):
    """The preset's Gluon network with the checkpoint's weights."""
    net = network(config.preset)
    load_checkpoint(net, config.prefix, config.epoch, ctx=mx.cpu())
    return net


def duc_ratio(net) -> int:
    """r = d / c of a DUC network."""
    return int(net.output_stride) // int(net.prediction_stride)


class ForwardVariant:
    """``run()``: ``self.forward(input)`` -> native output; ``probabilities()`` in pixel layout."""

    def __init__(self, forward, x: np.ndarray, to_pixels=None) -> None:
        self.forward = forward
        self.x = x
        self.to_pixels = to_pixels
        self.last: Optional[np.ndarray] = None

    def run(self) -> None:
        self.last = self.forward(self.x)

    def probabilities(self) -> Optional[np.ndarray]:
        """The last run's probabilities, (N, L, H/s, W/s)."""
        if self.last is None:
            return None
        return self.to_pixels(self.last) if self.to_pixels else self.last

    def probabilities_of(self, x: np.ndarray) -> np.ndarray:
        """(N, L, H/s, W/s) probabilities of another input of the same shape (not timed)."""
        out = self.forward(x)
        return self.to_pixels(out) if self.to_pixels else out


def _gluon(config: VariantConfig, x: np.ndarray) -> ForwardVariant:
    from tusimple_duc.inference.fast import FastForward
    from tusimple_duc.inference.predictor import forward_probabilities

    net = load_net(config)
    name = config.variant
    system = name == "gluon" and is_system(net)   # test.py's MXNet forward of a comparison system
    if name in ("gluon", "gluon-bf16") and not system:
        return ForwardVariant(FastForward(net, "fp32" if name == "gluon" else "bf16"), x)
    if name in INT8_VARIANTS:
        calibration = np.load(config.calibration) if config.calibration else None
        return ForwardVariant(FastForward(net, "int8", calibration, config.calibration_mode,
                                          int8_fp32=INT8_VARIANTS[name]), x)
    if name == "lever-raw-head":
        ratio = duc_ratio(net)
        return ForwardVariant(FastForward(net, raw_head=True), x,
                              lambda cells: layout.cells_to_pixels(cells, ratio))
    if name == "lever-static":
        return ForwardVariant(FastForward(net, fuse=False, pad_head=False), x)
    if name == "lever-unpadded-head":
        return ForwardVariant(FastForward(net, pad_head=False), x)
    if name == "lever-fused-plain-relu":
        return ForwardVariant(_fused_plain_relu(net, x), x)
    if name == "lever-hybridized":
        net.hybridize()
    if system:
        net.hybridize(static_alloc=True, static_shape=True)
    return ForwardVariant(lambda batch: forward_probabilities(net, batch, [mx.cpu()]), x)


def _fused_plain_relu(net, x: np.ndarray):
    """oneDNN fusion of ``softmax(net(data))`` as traced, ``relu`` nodes not rewritten."""
    data = mx.sym.var("data")
    block = mx.gluon.SymbolBlock(mx.sym.softmax(net(data), axis=1), [data],
                                 params=net.collect_params())
    block.hybridize(static_alloc=True, static_shape=True)
    block.optimize_for(mx.nd.array(x), backend="MKLDNN", static_alloc=True, static_shape=True)
    return lambda batch: block(mx.nd.array(batch)).asnumpy()


def _module(config: VariantConfig, x: np.ndarray) -> ForwardVariant:
    import warnings

    with warnings.catch_warnings():  # Module.load's default label name is absent: expected
        warnings.simplefilter("ignore")
        module = mx.mod.Module.load(config.prefix, config.epoch, context=mx.cpu())
        module.bind(data_shapes=[("data", x.shape)], for_training=False)
    net = network(config.preset)

    def forward(batch: np.ndarray) -> np.ndarray:
        module.forward(mx.io.DataBatch([mx.nd.array(batch)]), is_train=False)
        return module.get_outputs()[0].asnumpy()

    return ForwardVariant(forward, x, lambda flat: prediction_layout(flat, net, x.shape[2:]))


def _torch(config: VariantConfig, x: np.ndarray) -> ForwardVariant:
    import torch

    from experiments.bench.torch_duc import TorchDUC, load_named_arrays
    from tusimple_duc.io.paramfile import read_params

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    model = TorchDUC(config.preset)
    arrays = read_params(params_path(config.prefix, config.epoch))
    load_named_arrays(model, {key: value.asnumpy() for key, value in arrays.items()})
    del arrays
    channels_last = config.variant == "torch"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)

    def forward(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(batch)
            if channels_last:
                t = t.contiguous(memory_format=torch.channels_last)
            return torch.softmax(model(t), dim=1).contiguous().numpy()

    return ForwardVariant(forward, x)


class PredictVariant(PredictorRun):
    """One ``Predictor.predict`` of a uint8 RGB image with the fp32 fast forward;
    ``probabilities()``: the last run's (1, L, H, W)."""

    def __init__(self, config: VariantConfig) -> None:
        import cv2

        from tusimple_duc.inference import InferenceSpec, Predictor
        from tusimple_duc.inference.fast import FastForward

        net = load_net(config)
        image = cv2.imread(config.input, cv2.IMREAD_COLOR)
        self.image = np.ascontiguousarray(image[:, :, ::-1])
        spec = (InferenceSpec(mode="sliding", window=SLIDING_WINDOW, stride=SLIDING_STRIDE)
                if config.variant == "predict-sliding" else InferenceSpec())
        self.predictor = Predictor(net, spec, forward=FastForward(net))
        self.last = None


class TrainStepVariant:
    """One SGD update (forward, backward, update) of the engine on a batch-1 crop."""

    def __init__(self, config: VariantConfig) -> None:
        from tusimple_duc.config import ModelSection
        from tusimple_duc.engine.contexts import DeviceSetup
        from tusimple_duc.engine.schedules import schedule_from_config
        from tusimple_duc.engine.trainer import SegmentationTrainer

        net = load_net(config)
        net.hybridize(static_alloc=True)   # as engine.run does
        model = ModelSection()
        self.trainer = SegmentationTrainer(net, DeviceSetup([mx.cpu()], None),
                                           schedule_from_config(model, updates_per_epoch=1000),
                                           model, ignore_label=255, batch_size=1)
        batch = np.load(config.input)
        self.data, self.label = batch["data"], batch["label"]

    def run(self) -> None:
        self.trainer.step(self.data, self.label)
        mx.nd.waitall()

    def probabilities(self) -> None:
        return None


def build_variant(config: VariantConfig):
    """The variant object of ``config`` (see the module docstring)."""
    name = config.variant
    if name == "predict-whole" or name == "predict-sliding":
        return PredictVariant(config)
    if name == "train-step":
        return TrainStepVariant(config)
    if name == "predict-openvino":
        return PredictOpenVINOVariant(config)
    if name == "bare-openvino":
        return BareOpenVINOImageVariant(config)
    if name in BARE_VARIANTS:
        x = np.load(config.input)
        net = geometry_net(config.preset)
        return ForwardVariant(bare_forward(name, config.onnx, x.shape, config.preset, config.calibration,
                                           config.int8_cache), x,
                              lambda flat: prediction_layout(flat, net, x.shape[2:]))
    if name not in FORWARD_VARIANTS:
        raise ValueError(f"unknown variant {name!r} (known: {', '.join(FORWARD_VARIANTS + OTHER_VARIANTS)})")
    x = np.load(config.input)
    if name == "module":
        return _module(config, x)
    if name.startswith("torch"):
        return _torch(config, x)
    return _gluon(config, x)
