"""test.py end to end: synthetic Cityscapes, a tiny checkpoint in the released format."""
import json
import os
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest

from tusimple_duc.config import load_test_config
from tusimple_duc.data.labels import CITYSCAPES_TRAINID_TO_ID
from tusimple_duc.errors import CheckpointError, DataError
from tusimple_duc.evaluation import evaluate_cityscapes
from tusimple_duc.io.checkpoint import save_checkpoint
from tusimple_duc.models.presets import get_model
from tusimple_duc.pipelines.segment import run_test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = (64, 128)
MEAN = np.array([122.675, 116.669, 104.008], dtype=np.float32)


def _net(preset: str, seed: int = 3):
    mx.random.seed(seed)
    net = get_model(preset)
    net.initialize(mx.init.Xavier(factor_type="in", magnitude=2.34))
    net(mx.nd.zeros((1, 3) + SIZE))
    return net


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, synthetic_val_split):
    root = tmp_path_factory.mktemp("segment")
    summary = synthetic_val_split(root, SIZE, seed=5)
    net = _net("tiny_duc_hdc")
    save_checkpoint(net, str(root / "models" / "tiny"), 7)
    return root, summary, net


def _config(root, result_dir, *extra):
    return [
        f"data.image_list={root / 'val.lst'}", f"data.test_img_dir={root / 'cityscapes'}",
        f"data.gt_dir={root / 'cityscapes'}", f"model.model_dir={root / 'models'}", "model.model_prefix=tiny",
        "model.model_epoch=7", "model.gpu=-1", f"model.result_dir={result_dir}", "network.preset=tiny_duc_hdc",
        f"data.test_shape={SIZE[0]},{SIZE[1]}", f"data.result_shape={SIZE[0]},{SIZE[1]}", *extra,
    ]


def _released_protocol(net, image_rgb):
    """Independent released protocol: mean-subtract, forward, softmax, cv2 bilinear resize, argmax."""
    x = (image_rgb.astype(np.float32) - MEAN).transpose(2, 0, 1)[None]
    prob = mx.nd.softmax(net(mx.nd.array(x)), axis=1)[0].asnumpy()
    full = cv2.resize(prob.transpose(1, 2, 0), (SIZE[1], SIZE[0]), interpolation=cv2.INTER_LINEAR)
    return full.argmax(axis=2), full.max(axis=2).mean()


def test_released_protocol_outputs_and_metrics(dataset, tmp_path):
    root, summary, net = dataset
    config = load_test_config(os.path.join(ROOT, "configs", "test", "test_full_image.cfg"),
                              _config(root, tmp_path / "out", "output.save_probabilities=True"))
    run = run_test(config, show_progress=False)
    assert len(run.images) == 2
    for frame, confidence in zip(summary.frames["val"], run.confidences):
        # Named as the released script named it: the list line's last path component (the label file).
        name = os.path.basename(frame.files["gtFine_labelIds"])
        score = cv2.imread(str(tmp_path / "out" / "score" / name), cv2.IMREAD_UNCHANGED)
        assert score.dtype == np.uint8 and score.shape == SIZE
        image = cv2.imread(frame.image)[:, :, ::-1]
        expected, expected_confidence = _released_protocol(net, image)
        agree = (score == CITYSCAPES_TRAINID_TO_ID[expected]).mean()
        assert agree > 0.999
        assert confidence == pytest.approx(expected_confidence, abs=1e-4)
        for folder in ("color", "overlay"):
            written = cv2.imread(str(tmp_path / "out" / folder / name))
            assert written.shape == SIZE + (3,)
        with np.load(tmp_path / "out" / "prob" / name.replace(".png", ".npz")) as archive:
            assert archive["probabilities"].dtype == np.float16
            assert archive["probabilities"].shape == (19,) + SIZE
    stored = json.loads((tmp_path / "out" / "metrics.json").read_text())
    folder = evaluate_cityscapes(str(tmp_path / "out" / "score"), summary.root, "val")
    assert stored["summary"]["mIoU"] == pytest.approx(folder.summary["mIoU"], abs=1e-12)
    assert stored["summary"]["iIoU"] == pytest.approx(folder.summary["iIoU"], abs=1e-12)
    assert (tmp_path / "out" / "figures").is_dir()
    lines = (tmp_path / "out" / "confidence.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == run.images


def test_images_mode_without_list(dataset, tmp_path):
    root, summary, _ = dataset
    config = load_test_config(None, _config(root, tmp_path / "own", "data.result_shape=None"))
    folder = os.path.dirname(summary.frames["val"][0].image)
    run = run_test(config, images=[folder], show_progress=False)
    assert run.metrics is None and len(run.images) >= 1
    assert run.result_dir.startswith(str(tmp_path / "own-images-"))  # its own folder, beside result_dir
    assert (tmp_path / run.result_dir / "score" / run.images[0]).is_file()
    assert not (tmp_path / "own").exists()


def test_cli_errors_are_one_line(dataset, tmp_path):
    root, summary, _ = dataset
    cfg = os.path.join(ROOT, "configs", "test", "test_full_image.cfg")
    sets = []
    for item in _config(root, tmp_path / "cli", "model.model_epoch=9"):
        sets += ["--set", item]
    result = subprocess.run([sys.executable, os.path.join(ROOT, "test.py"), cfg, "--quiet", *sets],
                            capture_output=True, text=True, cwd=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "tiny-0009.params: no such checkpoint (epochs found: 7)" in result.stderr


def test_checkpoint_of_another_network_is_refused(dataset, tmp_path):
    root, _, _ = dataset
    save_checkpoint(_net("tiny_baseline"), str(tmp_path / "models" / "tiny"), 1)
    overrides = _config(root, tmp_path / "x", f"model.model_dir={tmp_path / 'models'}", "model.model_epoch=1")
    with pytest.raises(CheckpointError, match="tiny"):
        run_test(load_test_config(None, overrides), show_progress=False)


def test_unreadable_image_names_the_file_once(dataset, tmp_path):
    root, _, _ = dataset
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    config = load_test_config(None, _config(root, tmp_path / "y"))
    with pytest.raises(DataError, match="broken.png") as error:
        run_test(config, images=[str(bad)], show_progress=False)
    assert str(error.value).count("broken.png") == 1


def test_cpu_fast_forward_equals_plain_and_int8_runs(dataset, tmp_path):
    root, summary, _ = dataset
    variants = {"plain": ["inference.cpu_fast=False"], "fast": [],
                "int8": ["inference.precision=int8", "inference.calibration_images=2"]}
    probabilities = {}
    for name, extra in variants.items():
        config = load_test_config(None, _config(root, tmp_path / name, "output.save_color=False",
                                                "output.save_overlay=False", "output.save_probabilities=True", *extra))
        run_test(config, show_progress=False)
        stem = os.path.basename(summary.frames["val"][0].files["gtFine_labelIds"]).replace(".png", ".npz")
        with np.load(tmp_path / name / "prob" / stem) as archive:
            probabilities[name] = archive["probabilities"].astype(np.float32)
    # float16 storage: 1e-3 covers its rounding of values in [0, 1].
    np.testing.assert_allclose(probabilities["fast"], probabilities["plain"], atol=1e-3)
    agree = (probabilities["int8"].argmax(0) == probabilities["plain"].argmax(0)).mean()
    # Random weights give near ties between classes; a broken conversion agrees on ~1/19 of pixels.
    assert agree > 0.6


def test_low_precision_needs_the_fast_cpu_forward():
    from tusimple_duc.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[inference\] precision: bf16 needs cpu_fast = True"):
        load_test_config(None, ["data.image_list=x", "inference.precision=bf16", "inference.cpu_fast=False"])


def test_int8_fp32_groups_are_parsed_validated_and_reach_the_forward(dataset, tmp_path):
    from tusimple_duc.errors import ConfigError
    from tusimple_duc.data.lists import read_list
    from tusimple_duc.pipelines.segment import select_forward

    base = ["data.image_list=x", "inference.precision=int8"]
    assert load_test_config(None, base).inference.int8_fp32 == ("head", "residual", "last_stage")
    assert load_test_config(None, base + ["inference.int8_fp32=head"]).inference.int8_fp32 == ("head",)
    assert load_test_config(None, base + ["inference.int8_fp32=last_stage,head"]).inference.int8_fp32 == (
        "last_stage", "head")
    assert load_test_config(None, base + ["inference.int8_fp32=none"]).inference.int8_fp32 is None
    root, _, _ = dataset
    with pytest.raises(ConfigError, match=r"\[inference\] int8_fp32: unknown layer group stem"):
        select_forward(load_test_config(None, base + ["inference.int8_fp32=head,stem"]), _net("tiny_duc_hdc"),
                       [mx.cpu()], [], own_images=False)
    config = load_test_config(None, _config(root, tmp_path / "z", "inference.precision=int8",
                                            "inference.calibration_images=1", "inference.int8_fp32=none"))
    forward = select_forward(config, _net("tiny_duc_hdc"), [mx.cpu()], read_list(config.data.image_list),
                             own_images=False)
    assert forward.precision == "int8" and forward.int8_fp32 == ()



def test_two_field_list_segments_without_ground_truth(dataset, tmp_path):
    """``index<TAB>image`` lines, as the original's predict_full_image.py read them (field 1 only)."""
    root, summary, _ = dataset
    lines = (root / "val.lst").read_text().splitlines()
    (tmp_path / "test.lst").write_text("".join("\t".join(line.split("\t")[:2]) + "\n" for line in lines))
    with_labels = run_test(load_test_config(None, _config(root, tmp_path / "three")), show_progress=False)
    without = run_test(load_test_config(None, _config(root, tmp_path / "two",
                                                       f"data.image_list={tmp_path / 'test.lst'}")),
                       show_progress=False)
    assert with_labels.metrics is not None and without.metrics is None
    # Named by the line's last path component: the image, as the original's item.split('/')[-1].
    assert without.images == [os.path.basename(f.image) for f in summary.frames["val"]]
    for named_by_label, named_by_image in zip(with_labels.images, without.images):
        three = cv2.imread(str(tmp_path / "three" / "score" / named_by_label), cv2.IMREAD_UNCHANGED)
        two = cv2.imread(str(tmp_path / "two" / "score" / named_by_image), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(three, two)


def test_images_mode_reads_bmp_ppm_and_grey_as_cv2_imread(dataset, tmp_path, caplog):
    root, summary, _ = dataset
    image = cv2.imread(summary.frames["val"][0].image)
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("a.png", "b.bmp", "c.ppm"):
        assert cv2.imwrite(str(folder / name), image)
    assert cv2.imwrite(str(folder / "d.png"), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    config = load_test_config(None, _config(root, tmp_path / "own", "data.result_shape=None"))
    with caplog.at_level("WARNING", logger="tusimple_duc.data.geometry_checks"):
        run = run_test(config, images=[str(folder)], show_progress=False)
    assert run.images == ["a.png", "b.png", "c.png", "d.png"]
    scores = [cv2.imread(str(tmp_path / "own" / "score" / name), cv2.IMREAD_UNCHANGED) for name in run.images]
    assert np.array_equal(scores[0], scores[1]) and np.array_equal(scores[0], scores[2])
    warnings = [r.getMessage() for r in caplog.records if "cv2.imread" in r.getMessage()]
    assert len(warnings) == 1 and "1 image(s) are not 8-bit colour" in warnings[0] and "d.png" in warnings[0]
