"""The demo (tools/demo.py, experiments.demo.pipeline): quick run end to end, released path, parts."""
import dataclasses
import json
import os
import subprocess
import sys
from collections import Counter

import cv2
import mxnet as mx
import numpy as np
import pytest

from tusimple_duc.config import load_test_config, load_train_config
from tusimple_duc.data.labels import CITYSCAPES_TRAINID_TO_ID
from tusimple_duc.evaluation import evaluate_cityscapes
from tusimple_duc.io.checkpoint import save_checkpoint
from tusimple_duc.models.from_config import spec_from_test_config, spec_from_train_config
from tusimple_duc.models.presets import get_model
from experiments.demo import pipeline as demo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_CFG = os.path.join(ROOT, "configs", "train", "demo_synthetic.cfg")
TEST_CFG = os.path.join(ROOT, "configs", "test", "demo_synthetic.cfg")
DEMO_PY = os.path.join(ROOT, "tools", "demo.py")
MEAN = np.array([122.675, 116.669, 104.008], dtype=np.float32)
H, W = demo.QUICK_DATA.image_size


@pytest.fixture(scope="module")
def released_prefix(tmp_path_factory):
    """A random-valued checkpoint with the released names (the real file is 65 M parameters too)."""
    mx.random.seed(11)
    net = get_model(demo.RELEASED_PRESET)
    net.initialize(mx.init.Xavier(factor_type="in", magnitude=2.34))
    net(mx.nd.zeros((1, 3, H, W)))
    prefix = str(tmp_path_factory.mktemp("released") / "ResNet_DUC_HDC_CityScapes")
    save_checkpoint(net, prefix, demo.RELEASED_EPOCH)
    return prefix, net


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, released_prefix):
    paths = demo.DemoPaths(str(tmp_path_factory.mktemp("demo") / "out"))
    result = demo.run_demo(paths, TRAIN_CFG, TEST_CFG, demo.QUICK_DATA, demo.QUICK_TRAIN_OVERRIDES,
                           released=(released_prefix[0], demo.RELEASED_EPOCH), show_progress=False)
    return paths, result


def test_shipped_configs_describe_the_same_network():
    train = load_train_config(TRAIN_CFG)
    test = load_test_config(TEST_CFG)
    train_spec = spec_from_train_config(train)
    test_spec = spec_from_test_config(test)
    # BatchNorm learns its statistics (at the demo's momentum) while training; at test time they
    # are used frozen either way, so neither setting changes the network tested.
    assert dataclasses.replace(train_spec, bn_use_global_stats=True, bn_momentum=test_spec.bn_momentum) == test_spec
    assert test.model.model_epoch == train.model.num_epochs
    assert test.model.model_prefix == train.model.save_model_prefix
    assert tuple(test.data.test_shape) == tuple(demo.DemoData().image_size) == (256, 512)
    assert test.network.preset == train.network.preset == "tiny_duc_hdc"


def test_quick_demo_outputs(quick_run):
    paths, result = quick_run
    # 2 train images x 7 patches, 2 val images
    with open(os.path.join(paths.lists, "train_7fold.lst")) as handle:
        assert len(handle.read().splitlines()) == 14
    assert os.path.isfile(result.train.checkpoint) and result.train.checkpoint.endswith("-0001.params")
    # The run's own folder <out>/model/<prefix>/<time>/, which test.py then reads.
    assert os.path.dirname(result.train.checkpoint) == result.train.run_dir
    assert os.path.dirname(os.path.dirname(result.train.run_dir)) == paths.model
    names = sorted(os.listdir(os.path.join(paths.results, "score")))
    assert len(names) == 2
    for folder in ("color", "overlay"):
        assert sorted(os.listdir(os.path.join(paths.results, folder))) == names
    # metrics.json = the official evaluation of the written labelIds PNGs, recomputed from the files
    stored = json.loads(open(os.path.join(paths.results, "metrics.json")).read())
    folder = evaluate_cityscapes(os.path.join(paths.results, "score"), paths.dataset, "val")
    assert stored["summary"]["mIoU"] == pytest.approx(folder.summary["mIoU"], abs=1e-12)
    assert result.miou == pytest.approx(folder.summary["mIoU"], abs=1e-12)
    assert os.path.isfile(os.path.join(paths.baseline, "metrics.json"))
    curves = cv2.imread(paths.curves)
    assert curves is not None and curves.shape[0] > 100
    text = demo.summary_text(result)
    assert f"{100 * result.miou:.1f}%" in text and paths.mosaic in text


def test_mosaics_have_one_panel_per_prediction(quick_run):
    paths, result = quick_run
    strip = max(20, H // 16)  # title strip of viz.colorize.mosaic
    combined = cv2.imread(paths.mosaic)
    assert combined.shape == (2 * (H + strip), 4 * W, 3)  # image | ground truth | prediction | released
    for path in result.mosaics:
        panel = cv2.imread(path)[strip:, 2 * W:3 * W, ::-1]
        name = os.path.basename(path)
        colour = cv2.imread(os.path.join(paths.results, "color", name))[:, :, ::-1]
        np.testing.assert_array_equal(panel, colour)  # prediction panel = test.py's colour PNG


def test_released_checkpoint_segments_the_val_images(quick_run, released_prefix):
    paths, result = quick_run
    _, net = released_prefix
    assert result.released is not None and len(result.released.images) == 2
    for name, image_path in zip(result.released.images, result.released.image_paths):
        image = cv2.imread(image_path)[:, :, ::-1]
        x = (image.astype(np.float32) - MEAN).transpose(2, 0, 1)[None]
        prob = mx.nd.softmax(net(mx.nd.array(x)), axis=1)[0].asnumpy()
        full = cv2.resize(prob.transpose(1, 2, 0), (W, H), interpolation=cv2.INTER_LINEAR)
        expected = CITYSCAPES_TRAINID_TO_ID[full.argmax(axis=2)]
        score = cv2.imread(os.path.join(paths.released, "score", name), cv2.IMREAD_UNCHANGED)
        assert (score == expected).mean() > 0.999


def test_training_is_deterministic_given_the_seed(quick_run, tmp_path):
    paths, result = quick_run
    config = demo.demo_train_config(TRAIN_CFG, paths, ["env.seed=0", *demo.QUICK_TRAIN_OVERRIDES,
                                                       f"model.model_dir={tmp_path / 'again'}"])
    assert demo.train_model(config).params_sha1 == result.train.params_sha1


def _write_label(path, label_ids):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), np.asarray(label_ids, dtype=np.uint8))


def test_majority_label_map_brute_force(tmp_path):
    rng = np.random.default_rng(4)
    ids = np.array([7, 8, 11, 26, 0])  # road, sidewalk, building, car, unlabeled (ignored)
    maps = [ids[rng.integers(0, len(ids), size=(5, 6))] for _ in range(5)]
    maps[0][0, 0] = maps[1][0, 0] = maps[2][0, 0] = maps[3][0, 0] = maps[4][0, 0] = 0  # nobody labels it
    paths = []
    for index, label in enumerate(maps):
        paths.append(str(tmp_path / f"x{index}_gtFine_labelIds.png"))
        _write_label(paths[-1], label)
    train_id = {7: 0, 8: 1, 11: 2, 26: 13}
    overall = Counter(train_id[v] for m in maps for v in m.ravel() if v in train_id)
    most_overall = min(overall, key=lambda k: (-overall[k], k))
    got = demo.majority_label_map(paths)
    for y in range(5):
        for x in range(6):
            votes = Counter(train_id[m[y, x]] for m in maps if m[y, x] in train_id)
            expected = min(votes, key=lambda k: (-votes[k], k)) if votes else most_overall
            assert got[y, x] == expected


def test_chance_miou_by_hand():
    # two equally frequent classes, guessing each half the time: TP = FP = FN = 1/4 -> IoU 1/3
    assert demo.chance_miou(np.array([5, 5])) == pytest.approx(1 / 3)
    # absent classes do not count; one class present, 3 classes guessed: IoU = (1/3) / 1
    assert demo.chance_miou(np.array([0, 7, 0])) == pytest.approx(1 / 3)


def test_cli_missing_released_checkpoint_fails_before_training(tmp_path):
    result = subprocess.run([sys.executable, DEMO_PY, "--quick", "--out", str(tmp_path / "o"),
                             "--released", str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'nothing'}-0020.params: released checkpoint not found "
        "(--released PREFIX names PREFIX-symbol.json and PREFIX-0020.params)")
    assert not os.path.exists(tmp_path / "o" / "model")
