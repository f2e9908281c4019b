"""The benchmark of a comparison system (``models.systems``: FCN, SegNet, PSPNet, ...).

A system runs the main section only, with the variants of :data:`SYSTEM_MAIN_VARIANTS`:
``gluon`` is then the MXNet forward test.py runs for a system (the network hybridized with
``static_alloc`` and ``static_shape``, softmax over the scores; FastForward and its int8
calibration are built for the DUC head), ``module`` is ``mx.mod.Module`` on the system's
exported training graph (:func:`tusimple_duc.io.export.save_system_graph`, output (N, L, h, w)),
and the deployment backends are the (backend, precision) pairs test.py offers for systems
(:data:`~tusimple_duc.pipelines.segment.SYSTEM_BACKEND_PRECISIONS`) on the system's clean ONNX
export. The others (torch, the int8 backends, the predictor variants) and the other sections do
not apply: skipped by default, a one-line error when asked for.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from experiments.bench.backend_variants import BARE_VARIANTS, backend_precision, conv_form
from tusimple_duc.engine.network import XAVIER, initialise
from tusimple_duc.errors import ConfigError
from tusimple_duc.io.checkpoint import load_checkpoint, save_checkpoint
from tusimple_duc.io.export import save_system_graph
from tusimple_duc.models import get_model
from tusimple_duc.models.flops import MacCount, count_macs, count_network_macs
from tusimple_duc.models.systems import SYSTEM_PRESETS
from tusimple_duc.pipelines.segment import SYSTEM_BACKEND_PRECISIONS

SYSTEM_MAIN_VARIANTS: Tuple[str, ...] = ("gluon", "module") + tuple(
    name for name in BARE_VARIANTS
    if backend_precision(name) in SYSTEM_BACKEND_PRECISIONS and conv_form(name) == "direct")  # taps: DUC heads only
SYSTEM_SECTIONS: Tuple[str, ...] = ("main",)


def is_system_preset(preset: str) -> bool:
    """True when ``preset`` names a comparison system, False for a DUC network."""
    return preset in SYSTEM_PRESETS


def not_applicable(preset: str, main_variants: Sequence[str]) -> Tuple[str, ...]:
    """The variants of ``main_variants`` a comparison system ``preset`` cannot run (none for DUC)."""
    if not is_system_preset(preset):
        return ()
    return tuple(name for name in main_variants if name not in SYSTEM_MAIN_VARIANTS)


def check_system_request(preset: str, sections: Sequence[str], main_variants: Sequence[str]) -> None:
    """Raise a one-line :class:`ConfigError` when a comparison system ``preset`` is asked for a
    section or main variant that only the DUC networks have."""
    if not is_system_preset(preset):
        return
    sections_left = [s for s in sections if s not in SYSTEM_SECTIONS]
    if sections_left:
        raise ConfigError(f"--sections: {', '.join(sections_left)} measure the DUC networks only; comparison "
                          f"system {preset} runs {', '.join(SYSTEM_SECTIONS)}")
    variants_left = not_applicable(preset, main_variants)
    if variants_left:
        raise ConfigError(f"--main-variants: {', '.join(variants_left)} do not apply to comparison system "
                          f"{preset} (it runs {', '.join(SYSTEM_MAIN_VARIANTS)})")


def draw_zero_weights(net: Any, seed: int) -> List[str]:
    """Give the convolution weights a system initialises to zero (FCN's score layers) the
    released initializer's Xavier draw instead, so that random-weight probabilities differ from
    pixel to pixel and the outputs' check compares something; returns their names."""
    xavier = mx.init.Xavier(**XAVIER)
    mx.random.seed(seed)
    drawn = []
    for name, param in net.collect_params().items():
        if name.endswith("_weight") and param.grad_req != "null" and not np.any(param.data().asnumpy()):
            value = mx.nd.zeros(param.shape)
            xavier(mx.init.InitDesc(name), value)
            param.set_data(value)
            drawn.append(name)
    return drawn


def save_system_weights(preset: str, checkpoint: Optional[str], epoch: int, seed: int, prefix: str,
                        module_prefix: str) -> str:
    """Write the weights of comparison system ``preset``: those of ``checkpoint``/``epoch``, or
    random ones (the released initializer, ``seed``, :func:`draw_zero_weights`), as
    ``<prefix>-0000.params`` (every array of the Gluon network) and as its exported graph and
    arrays at ``module_prefix`` (for ``mx.mod.Module``). Returns where the weights come from."""
    net = get_model(preset)
    if checkpoint:
        load_checkpoint(net, checkpoint, epoch, ctx=mx.cpu())
        source = f"{checkpoint} epoch {epoch}"
    else:
        stride = int(net.output_stride)
        initialise(net, [mx.cpu()], seed, (1, 3, 4 * stride, 4 * stride))
        drawn = draw_zero_weights(net, seed)
        source = (f"random (released initializer, seed {seed}"
                  + (f"; zero-initialised {', '.join(drawn)} drawn like the others)" if drawn else ")"))
    save_checkpoint(net, prefix, 0)
    save_system_graph(net, module_prefix)
    return source


def network_macs(preset: str, height: int, width: int) -> MacCount:
    """Multiply-adds of ``preset`` on one (3, height, width) image: the DUC networks' closed form
    (:func:`count_macs`), a system's graph (:func:`count_network_macs`)."""
    if is_system_preset(preset):
        return count_network_macs(get_model(preset), height, width)
    return count_macs(preset, height, width)
