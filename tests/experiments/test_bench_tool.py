"""tools/bench.py end to end on the tiny preset: the precision and training sections.

The timings mean nothing at this size; what is checked is the structure of the results, the
invariants of the comparison (fp32 against itself) and that a trained checkpoint given as its
training config is measured at its own shape.
"""
from __future__ import annotations

import json
import os
import sys

import tusimple_duc  # noqa: F401  (before mxnet: thread set-up)
import mxnet as mx
import numpy as np
import pytest

from tusimple_duc.errors import ConfigError
from tusimple_duc.io.checkpoint import save_checkpoint
from tusimple_duc.models.from_config import spec_from_train_config
from tusimple_duc.config import load_train_config
from tusimple_duc.models import build_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import bench  # noqa: E402
from experiments.bench.scoring import top_two_margin  # noqa: E402

TRAIN_CONFIG = """[network]
preset = tiny_duc_hdc
dilation_schedule = dilation-bigger
cell_width = 2
[data]
train_list = unused.lst
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    config = folder / "demo-train.cfg"
    config.write_text(TRAIN_CONFIG)
    net = build_model(spec_from_train_config(load_train_config(str(config))))
    mx.random.seed(7)
    net.initialize(mx.init.Xavier(magnitude=2))
    save_checkpoint(net, str(folder / "demo"), 3)
    out = folder / "bench.json"
    code = bench.main(["--preset", "tiny_duc_hdc", "--shapes", "64x128", "--runs", "1",
                       "--sections", "precision,train", "--train-crop", "64x64",
                       "--trained", f"{config}:{folder / 'demo'}:3", "--trained-shape", "96x192",
                       "--workdir", str(folder / "work"), "--out", str(out)])
    assert code == 0
    return json.loads(out.read_text())


def test_precision_section_compares_every_precision_with_fp32(results):
    precision = results["precision"]
    random_weights, trained = precision["random_weights"], precision["trained"]
    assert random_weights["shape"] == [64, 128] and trained["shape"] == [96, 192]
    assert "demo-train.cfg" in trained["weights"]
    for block in (random_weights, trained):
        variants = block["variants"]
        assert set(variants) == {"fp32", "bf16", "int8", "int8-residual", "int8-all"}
        assert variants["fp32"]["argmax_agreement"] == 1.0 and variants["fp32"]["max_abs_difference"] == 0.0
        assert variants["fp32"]["miou_change"] == 0.0
        assert 0.0 < block["confident_fraction"] <= 1.0 and block["confident_margin"] == 0.1
        assert variants["fp32"]["argmax_agreement_confident"] == 1.0
        for name, v in variants.items():
            assert 0.0 <= v["argmax_agreement"] <= 1.0 and 0.0 <= v["miou"] <= 1.0
            assert 0.0 <= v["argmax_agreement_confident"] <= 1.0
            assert v["miou_change"] == pytest.approx(v["miou"] - variants["fp32"]["miou"])
        # layers kept in fp32 are worth something even on random weights
        assert variants["int8-residual"]["argmax_agreement"] > variants["int8-all"]["argmax_agreement"]
        assert variants["int8"]["argmax_agreement"] >= variants["int8-residual"]["argmax_agreement"]
    assert random_weights["variants"]["fp32"]["speedup_vs_fp32"] == 1.0
    assert "speedup_vs_fp32" not in trained["variants"]["int8"]    # trained: accuracy only


def test_targets_score_the_trained_checkpoint_only(results):
    names = [name for name in results["targets"] if "argmax" in name]
    assert names == ["bf16 argmax agreement >= 99% (trained)", "int8 argmax agreement >= 99% (trained)"]
    assert results["train"]["crop"] == [64, 64] and results["train"]["median_s"] > 0


def test_top_two_margin_is_the_gap_between_the_two_largest_probabilities():
    probabilities = np.random.RandomState(0).dirichlet(np.ones(5), size=(3, 4)).transpose(2, 0, 1)
    ranked = np.sort(probabilities, axis=0)
    np.testing.assert_allclose(top_two_margin(probabilities), ranked[-1] - ranked[-2])
    tied = np.array([[[0.4]], [[0.4]], [[0.2]]])
    assert top_two_margin(tied)[0, 0] == 0.0


def test_bad_trained_arguments_are_named():
    with pytest.raises(ConfigError, match="is not PRESET:PREFIX:EPOCH"):
        bench.parse_trained("tiny_duc_hdc:prefix")
    with pytest.raises(ConfigError, match="missing-train.cfg: training config not found"):
        bench.parse_trained("missing-train.cfg:prefix:3")
