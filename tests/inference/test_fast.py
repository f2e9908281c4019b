"""The optimized CPU forward (tusimple_duc.inference.fast) against the plain Gluon forward."""
from __future__ import annotations

import json
from typing import Tuple

import tusimple_duc  # noqa: F401  (before mxnet: thread set-up)
import mxnet as mx
import numpy as np
import pytest

from tusimple_duc.errors import ConfigError
from tusimple_duc.inference import InferenceSpec, Predictor, forward_probabilities
from tusimple_duc.inference.fast import (FastForward, bf16_unavailable_reason, int8_fp32_layers, padded_channels,
                                        probability_symbol)
from tusimple_duc.models import get_model

CPU = [mx.cpu()]


def tiny_net(seed: int = 0, **overrides):
    net = get_model("tiny_duc_hdc", **overrides)
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier(magnitude=2))
    return net


def smooth_inputs(count: int, height: int, width: int, seed: int) -> np.ndarray:
    """(count, 3, H, W) float32 plane waves of amplitude 60 (mean-subtracted-RGB-like range)."""
    rng = np.random.RandomState(seed)
    rows = np.arange(height)[:, None] / height
    cols = np.arange(width)[None, :] / width
    out = np.empty((count, 3, height, width), dtype=np.float32)
    for n in range(count):
        for c in range(3):
            f_rows, f_cols, phase = rng.uniform(0.5, 2.5), rng.uniform(0.5, 2.5), rng.uniform(0, 2 * np.pi)
            out[n, c] = 60 * np.sin(2 * np.pi * (f_rows * rows + f_cols * cols) + phase)
    return out


def test_models_emit_relus_onednn_can_fuse():
    net = tiny_net()
    nodes = json.loads(net(mx.sym.var("data")).tojson())["nodes"]
    ops = [node["op"] for node in nodes]
    assert "relu" not in ops
    activations = [node["attrs"]["act_type"] for node in nodes if node["op"] == "Activation"]
    # tiny preset: 3 stem convs + 3 per bottleneck (reduce, 3x3, after the sum) x 9 blocks
    assert activations == ["relu"] * (3 + 3 * 9)


def test_fp32_equals_plain_forward_across_shapes_and_batches():
    net = tiny_net()
    fast = FastForward(net)
    rng = np.random.RandomState(0)
    for shape in [(1, 3, 64, 128), (2, 3, 48, 32), (1, 3, 64, 128)]:   # re-plan, then back
        batch = (rng.normal(size=shape) * 50).astype(np.float32)
        expected = forward_probabilities(net, batch, CPU)
        got = fast(batch)
        assert got.dtype == np.float32 and got.shape == (shape[0], 19, shape[2] // 2, shape[3] // 2)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


def test_fp32_without_fusion_and_raw_head_layout():
    net = tiny_net(seed=3)
    batch = smooth_inputs(1, 64, 64, 2)
    expected = forward_probabilities(net, batch, CPU)            # (1, 19, 32, 32)
    np.testing.assert_allclose(FastForward(net, fuse=False)(batch), expected, rtol=0, atol=1e-4)
    raw = FastForward(net, raw_head=True)(batch)                 # (1, 19, r*r, 8, 8), r = 4
    assert raw.shape == (1, 19, 16, 8, 8)
    # cell (y, x), sub-pixel (dy, dx) is pixel (4y + dy, 4x + dx): the DUC layout
    pixels = raw.reshape(1, 19, 4, 4, 8, 8).transpose(0, 1, 4, 2, 5, 3).reshape(1, 19, 32, 32)
    np.testing.assert_allclose(pixels, expected, rtol=0, atol=1e-4)


def test_head_padding_rounds_to_64_only_when_cheap():
    # 19 classes x 16 (released) -> 320 (+5%); 21 x 16 (VOC) = 336 -> 384 would add 14%: kept;
    # 2 x 16 (KITTI) = 32 -> 64 would double: kept; 19 x 64 (cell 1) = 1216 is a multiple of 64.
    assert [padded_channels(c) for c in (304, 336, 32, 1216, 64)] == [320, 336, 32, 1216, 64]


def test_padded_head_graph_computes_320_channels_and_equals_the_unpadded():
    net = tiny_net(seed=2)
    fast = FastForward(net)
    batch = smooth_inputs(2, 48, 64, 5)
    expected = forward_probabilities(net, batch, CPU)
    np.testing.assert_allclose(fast(batch), expected, rtol=0, atol=1e-4)
    np.testing.assert_allclose(FastForward(net, pad_head=False)(batch), expected, rtol=0, atol=1e-4)
    widened = {name: p.shape for name, p in fast.block.collect_params().items() if name.endswith("_padded")}
    # tiny: stage 5 has 32 x width 8 = 256 channels; 19 classes x 4 x 4 = 304 -> 320 outputs
    assert widened == {f"fc1_cityscapes_c{i}_{kind}_padded": (320, 256, 3, 3) if kind == "weight" else (320,)
                       for i in range(4) for kind in ("weight", "bias")}


def test_predictor_accepts_the_fast_forward():
    net = tiny_net(seed=1)
    image = np.random.RandomState(4).randint(0, 256, size=(70, 90, 3)).astype(np.uint8)
    spec = InferenceSpec(mode="sliding", window=(48, 48), stride=(32, 32), batch_windows=2)
    plain = Predictor(net, spec).predict(image)
    fast = Predictor(net, spec, forward=FastForward(net)).predict(image)
    np.testing.assert_allclose(fast.probabilities, plain.probabilities, rtol=0, atol=1e-4)
    assert (fast.labels == plain.labels).mean() > 0.999


# Low precision on a random tiny network. Its logits are near ties (median gap between the two
# largest probabilities 0.002-0.008 on these inputs), so rounding flips some argmaxes even when
# the conversion is right; a broken one (wrong scales or layout) agrees only about as often as
# the most frequent class occurs (~12% here). Measured: bf16 98.5-99%, int8 (head and residual
# stream fp32) 96%, int8 everywhere 80%.
@pytest.mark.parametrize("precision,groups,min_agreement,max_difference", [
    ("bf16", (), 0.95, 0.05),
    ("int8", ("head", "residual"), 0.90, 0.05),
    ("int8", (), 0.65, 0.25),
])
def test_low_precision_agrees_with_fp32_on_most_pixels(precision, groups, min_agreement, max_difference):
    net = tiny_net()
    batch = smooth_inputs(1, 64, 128, 100)
    reference = FastForward(net)(batch)
    if precision == "bf16" and bf16_unavailable_reason():  # MXNet's oneDNN has bf16 only with AVX-512
        with pytest.raises(ConfigError, match=r"^\[inference\] precision = bf16 is not available with backend "
                                              r"mxnet on this CPU: MXNet's oneDNN has no bf16 kernels") as err:
            FastForward(net, precision)
        assert "\n" not in str(err.value)
        return
    low = FastForward(net, precision, calibration=smooth_inputs(2, 64, 128, 0), int8_fp32=groups)(batch)
    assert low.shape == reference.shape and low.dtype == np.float32
    agreement = (low.argmax(axis=1) == reference.argmax(axis=1)).mean()
    most_frequent = np.bincount(reference.argmax(axis=1).ravel()).max() / reference[:, 0].size
    assert agreement >= min_agreement > 2 * most_frequent
    assert np.abs(low - reference).max() < max_difference
    np.testing.assert_allclose(low.sum(axis=1), 1.0, atol=1e-3)


def test_int8_groups_name_the_head_convolutions_and_the_shortcut_sums():
    net = tiny_net()
    symbol = probability_symbol(net)
    ops = {node["name"]: node["op"] for node in json.loads(symbol.tojson())["nodes"]}
    # tiny preset: a 4-branch ASPP head, 1 + 1 + 4 + 3 = 9 bottlenecks with one shortcut sum each
    assert [len(stage) for stage in net.backbone.stages()] == [1, 1, 4, 3]
    assert sorted(int8_fp32_layers(symbol, net, ("head",))) == [f"fc1_cityscapes_c{i}_fwd" for i in range(4)]
    residual = int8_fp32_layers(symbol, net, ("residual",))
    assert len(residual) == 9 and {ops[name] for name in residual} == {"elemwise_add"}
    assert set(int8_fp32_layers(symbol, net, ("head", "residual"))) == set(residual) | {
        f"fc1_cityscapes_c{i}_fwd" for i in range(4)}
    # last stage: 3 bottlenecks x (reduce, 3x3, increase) + the first one's projection, 3 sums
    last_stage = int8_fp32_layers(symbol, net, ("last_stage",))
    convolutions = {f"conv5_{b}_{layer}_fwd" for b in (1, 2, 3)
                    for layer in ("1x1_reduce", "3x3", "1x1_increase")} | {"conv5_1_1x1_proj_fwd"}
    assert {name for name in last_stage if ops[name] == "Convolution"} == convolutions
    sums = [name for name in last_stage if ops[name] == "elemwise_add"]
    assert len(last_stage) == 13 and len(sums) == 3 and set(sums) == set(residual[-3:])
    assert int8_fp32_layers(symbol, net, ()) == []
    with pytest.raises(ConfigError, match="unknown layer group stem"):
        int8_fp32_layers(symbol, net, ("stem",))

    class StagelessBackbone:  # a network whose backbone does not name its stages
        head, backbone = net.head, mx.gluon.nn.HybridSequential()

    assert int8_fp32_layers(symbol, StagelessBackbone(), ("head",)) == int8_fp32_layers(symbol, net, ("head",))
    with pytest.raises(ConfigError, match="last_stage needs a backbone with stages"):
        int8_fp32_layers(symbol, StagelessBackbone(), ("last_stage",))


def fused_convolutions(fast: FastForward, tmp_path, tag: str):
    """(all, not quantized) oneDNN convolution nodes of a built FastForward's graph."""
    fast(smooth_inputs(1, 64, 128, 1))
    fast.block.export(str(tmp_path / tag))
    nodes = json.loads((tmp_path / f"{tag}-symbol.json").read_text())["nodes"]
    convolutions = [node for node in nodes if node["op"] == "_sg_mkldnn_conv"]
    return len(convolutions), sum(node.get("attrs", {}).get("quantized") != "true" for node in convolutions)


def test_int8_runs_the_kept_groups_in_fp32_and_quantizes_the_rest(tmp_path):
    net = tiny_net()
    calibration = smooth_inputs(2, 64, 128, 0)

    def counts(groups: Tuple[str, ...], tag: str) -> Tuple[int, int]:
        return fused_convolutions(FastForward(net, "int8", calibration, int8_fp32=groups), tmp_path, tag)

    # 3 stem + 3 per bottleneck x 9 + 4 projections + 4 head = 38 convolutions
    assert counts((), "all") == (38, 0)
    assert counts(("head",), "head") == (38, 4)
    # + the 9 last 1x1 convolutions oneDNN fuses with the shortcut sums
    assert counts(("head", "residual"), "residual") == (38, 4 + 9)
    # the last stage's 10 convolutions, 3 of them the 1x1 increases fused with its sums
    assert counts(("last_stage",), "last") == (38, 10)
    default = fused_convolutions(FastForward(net, "int8", calibration), tmp_path, "default")
    assert default == counts(("head", "residual", "last_stage"), "three") == (38, 4 + 9 + 10 - 3)


def test_bad_options_raise_config_errors():
    net = tiny_net()
    with pytest.raises(ConfigError, match="precision must be one of"):
        FastForward(net, "fp16")
    with pytest.raises(ConfigError, match="int8 needs calibration"):
        FastForward(net, "int8")
    with pytest.raises(ConfigError, match="calibration_mode must be one of"):
        FastForward(net, "int8", calibration=smooth_inputs(1, 32, 32, 0), calibration_mode="kl")


def test_probability_symbol_has_the_network_parameters_as_inputs():
    net = tiny_net()
    symbol = probability_symbol(net)
    params = set(net.collect_params().keys())
    assert set(symbol.list_arguments()) | set(symbol.list_auxiliary_states()) == params | {"data"}
