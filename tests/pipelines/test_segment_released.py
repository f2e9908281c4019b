"""test.py against the released predict_full_image.py, restated here with PIL / OpenCV / NumPy.

Outputs named as the released script named them, its visualization mosaic and confidence
file, its test_shape crop of larger images; the network read from -symbol.json without
[network]; the reliability items (result_dir checked first, --images sizes, same names,
ground truth without instanceIds).
"""
import importlib.util
import logging
import os

import cv2
import mxnet as mx
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as official_labels
from PIL import Image

from tusimple_duc.config import load_test_config
from tusimple_duc.errors import ConfigError, OutputError
from tusimple_duc.io.checkpoint import save_checkpoint
from tusimple_duc.models.presets import get_model
from tusimple_duc.pipelines.segment import run_test

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = (64, 128)
MEAN = np.array([122.675, 116.669, 104.008], dtype=np.float32)


@pytest.fixture(scope="module")
def case(tmp_path_factory, synthetic_val_split):
    root = tmp_path_factory.mktemp("released")
    summary = synthetic_val_split(root, SIZE, seed=11)
    mx.random.seed(4)
    net = get_model("tiny_duc_hdc")
    net.initialize(mx.init.Xavier(factor_type="in", magnitude=2.34))
    net(mx.nd.zeros((1, 3) + SIZE))
    save_checkpoint(net, str(root / "models" / "tiny"), 7)
    return root, summary, net


def overrides(root, result_dir, *extra, network=True):
    return [f"data.image_list={root / 'val.lst'}", f"data.test_img_dir={root / 'cityscapes'}",
            f"data.gt_dir={root / 'cityscapes'}", f"model.model_dir={root / 'models'}", "model.model_prefix=tiny",
            "model.model_epoch=7", "model.gpu=-1", f"model.result_dir={result_dir}",
            f"data.test_shape={SIZE[0]},{SIZE[1]}", f"data.result_shape={SIZE[0]},{SIZE[1]}",
            "inference.cpu_fast=False", *(["network.preset=tiny_duc_hdc"] if network else []), *extra]


def original_softmax(net, image_rgb, test_shape, result_shape):
    """tester.preprocess + predictor.predict at scale 1: crop to test_shape, pad to it with the mean,
    forward, softmax, whole map resized (cv2 bilinear) to result_shape."""
    crop = image_rgb[:test_shape[0], :test_shape[1]].astype(np.float32)
    padded = cv2.copyMakeBorder(crop, 0, max(0, test_shape[0] - image_rgb.shape[0]), 0,
                                max(0, test_shape[1] - image_rgb.shape[1]), cv2.BORDER_CONSTANT,
                                value=MEAN.tolist())
    x = (padded - MEAN).transpose(2, 0, 1)[None]
    prob = mx.nd.softmax(net(mx.nd.array(x)), axis=1)[0].asnumpy()
    resized = cv2.resize(prob.transpose(1, 2, 0), (result_shape[1], result_shape[0]), interpolation=cv2.INTER_LINEAR)
    return resized.transpose(2, 0, 1)


def original_mosaic(image_rgb, softmax):
    """predict_full_image.predict_single's canvas, in the original's own calls (PIL paste, P palette)."""
    height, width = softmax.shape[1:]
    palette = [0] * 768
    for label in official_labels:
        if 0 <= label.trainId < 255:
            palette[label.trainId * 3:label.trainId * 3 + 3] = label.color
    raw = np.argmax(softmax, axis=0).astype(np.uint8)
    paletted = Image.fromarray(raw).convert("P")
    paletted.putpalette(palette)
    result_img = Image.fromarray(np.array(paletted.convert("RGB")))
    heat = cv2.applyColorMap((np.max(softmax, axis=0) * 256 - 1).astype(np.uint8), cv2.COLORMAP_JET)
    canvas = Image.new("RGB", (width * 2, height * 2))
    canvas.paste(Image.fromarray(image_rgb).convert("RGB"), (0, 0))
    canvas.paste(result_img, (0, height))
    canvas.paste(Image.fromarray(cv2.addWeighted(image_rgb[:, :, ::-1], 0.5, np.array(result_img), 0.5, 0)),
                 (width, 0))
    canvas.paste(Image.fromarray(heat[:, :, [2, 1, 0]]), (width, height))
    return np.array(canvas)


def read_rgb(path):
    return cv2.imread(str(path))[:, :, ::-1]


def test_outputs_are_named_drawn_and_listed_as_the_released_script(case, tmp_path):
    root, summary, net = case
    out = tmp_path / "out"
    run = run_test(load_test_config(os.path.join(ROOT, "configs", "test", "test_full_image.cfg"),
                                    overrides(root, out)), show_progress=False)
    expected_lines = []
    for frame in summary.frames["val"]:
        name = os.path.basename(frame.files["gtFine_labelIds"])
        image = read_rgb(frame.image)
        softmax = original_softmax(net, image, SIZE, SIZE)
        mosaic = read_rgb(out / "visualization" / name)
        assert mosaic.shape == (2 * SIZE[0], 2 * SIZE[1], 3)
        assert (mosaic == original_mosaic(image, softmax)).all(axis=2).mean() > 0.999
        assert (out / "score" / name).is_file()
        confidence = float(np.max(softmax, axis=0).mean())
        expected_lines.append((confidence, os.path.join(str(root / "cityscapes"),
                                                        os.path.relpath(frame.image, summary.root))))
    lines = (out / "tiny7.txt").read_text().splitlines()
    written = [(float(line.split("\t")[1]), line.split("\t")[0]) for line in lines]
    assert [path for _, path in written] == [path for _, path in sorted(expected_lines)]
    for (value, _), (expected, _) in zip(written, sorted(expected_lines)):
        assert value == pytest.approx(expected, abs=1e-6)
    assert all(len(line.split("\t")[1].replace("0.", "", 1)) <= 12 for line in lines)
    assert run.images == [os.path.basename(f.files["gtFine_labelIds"]) for f in summary.frames["val"]]


def test_python2_number_format():
    from tusimple_duc.pipelines.segment import python2_float_text

    # Python 2.7: str(0.1234567890123456) == '0.123456789012', str(1.0) == '1.0', str(0.5) == '0.5'.
    assert python2_float_text(0.1234567890123456) == "0.123456789012"
    assert python2_float_text(1.0) == "1.0"
    assert python2_float_text(0.5) == "0.5"


def test_a_larger_image_is_cropped_to_test_shape_as_released(case, tmp_path, caplog):
    root, summary, net = case
    big = cv2.resize(read_rgb(summary.frames["val"][0].image), (200, 96), interpolation=cv2.INTER_LINEAR)
    folder = tmp_path / "big"
    folder.mkdir()
    cv2.imwrite(str(folder / "big.png"), big[:, :, ::-1])
    label = summary.frames["val"][0].files["gtFine_labelIds"]
    (tmp_path / "big.lst").write_text(f"0\tbig.png\t{label}\n")
    config = load_test_config(None, overrides(root, tmp_path / "out", f"data.image_list={tmp_path / 'big.lst'}",
                                              f"data.test_img_dir={folder}"))
    with caplog.at_level(logging.WARNING):
        run_test(config, show_progress=False)
    score = cv2.imread(str(tmp_path / "out" / "score" / os.path.basename(label)), cv2.IMREAD_UNCHANGED)
    assert score.shape == SIZE
    from tusimple_duc.data.labels import CITYSCAPES_TRAINID_TO_ID

    expected = CITYSCAPES_TRAINID_TO_ID[original_softmax(net, big, SIZE, SIZE).argmax(axis=0)]
    assert (score == expected).mean() > 0.999
    assert "larger than test_shape 64x128 (HxW): only their top-left 64x128 (HxW) part is segmented" in caplog.text
    assert "96x200 (HxW)" in caplog.text


def test_without_network_section_the_symbol_file_defines_the_network(case, tmp_path):
    root, summary, _ = case
    with_section = run_test(load_test_config(None, overrides(root, tmp_path / "a")), show_progress=False)
    without = run_test(load_test_config(None, overrides(root, tmp_path / "b", network=False)), show_progress=False)
    assert without.confidences == with_section.confidences
    with pytest.raises(ConfigError, match=r"\[model\] label_num = 5, but the checkpoint's .*tiny-symbol.json has 19"):
        run_test(load_test_config(None, overrides(root, tmp_path / "c", "model.label_num=5", network=False)),
                 show_progress=False)


@pytest.mark.parametrize("blocker", ["file", "under_file"])
def test_blocked_result_dir_is_refused_before_the_network_is_loaded(case, tmp_path, blocker, monkeypatch):
    import tusimple_duc.pipelines.segment as segment

    root, _, _ = case
    taken = tmp_path / "taken"
    taken.write_text("")
    result_dir = taken if blocker == "file" else taken / "results"
    monkeypatch.setattr(segment, "load_network", lambda *a: pytest.fail("network loaded before the check"))
    with pytest.raises(OutputError, match=r"\[model\] result_dir .*taken.*not a folder") as error:
        run_test(load_test_config(None, overrides(root, result_dir)), show_progress=False)
    assert "\n" not in str(error.value)


def load_test_script():
    spec = importlib.util.spec_from_file_location("test_script", os.path.join(ROOT, "test.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_images_are_written_at_their_own_size_unless_result_shape_is_set_on_the_command_line(case, tmp_path):
    root, summary, _ = case
    odd = cv2.resize(read_rgb(summary.frames["val"][0].image), (70, 50))
    folder = tmp_path / "own"
    folder.mkdir()
    cv2.imwrite(str(folder / "odd.jpg"), odd[:, :, ::-1])
    config_file = tmp_path / "test.cfg"
    config_file.write_text("[data]\nimage_list=not_used_with_images.lst\nresult_shape=64,128\n")
    script = load_test_script()
    sets = []
    for item in overrides(root, tmp_path / "r1")[3:]:
        if not item.startswith("data.result_shape"):
            sets += ["--set", item]
    assert script.main([str(config_file), "--quiet", "--images", str(folder), "--out", str(tmp_path / "o1"),
                        *sets]) == 0
    assert cv2.imread(str(tmp_path / "o1" / "score" / "odd.png"), cv2.IMREAD_UNCHANGED).shape == (50, 70)
    sets += ["--set", "data.result_shape=32,64"]
    assert script.main([str(config_file), "--quiet", "--images", str(folder), *sets]) == 0
    (default_folder,) = [name for name in os.listdir(tmp_path) if name.startswith("r1-images-")]  # beside r1
    assert cv2.imread(str(tmp_path / default_folder / "score" / "odd.png"), cv2.IMREAD_UNCHANGED).shape == (32, 64)
    assert not (tmp_path / "r1").exists()


def test_same_stem_inputs_get_unique_names_and_one_warning(case, tmp_path, caplog):
    root, summary, _ = case
    image = read_rgb(summary.frames["val"][0].image)
    folder = tmp_path / "pics"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), image[:, :, ::-1])
    cv2.imwrite(str(folder / "a.jpg"), image[:, :, ::-1])
    cv2.imwrite(str(folder / "sub" / "a.png"), image[:, :, ::-1])
    config = load_test_config(None, overrides(root, tmp_path / "out"))
    with caplog.at_level(logging.WARNING):
        run = run_test(config, images=[str(folder), str(folder / "sub" / "a.png")], show_progress=False,
                       out=str(tmp_path / "out"))
    assert run.images == ["a.png", "a_2.png", "a_3.png"]
    assert sorted(os.listdir(tmp_path / "out" / "score")) == ["a.png", "a_2.png", "a_3.png"]
    warnings = [r for r in caplog.records if "share an output name" in r.getMessage()]
    assert len(warnings) == 1


def test_ground_truth_not_named_labelids_is_scored_without_iiou(case, tmp_path, caplog):
    root, summary, _ = case
    renamed = []
    for index, frame in enumerate(summary.frames["val"]):
        target = tmp_path / f"gt_{index}.png"
        target.write_bytes(open(frame.files["gtFine_labelIds"], "rb").read())
        renamed.append(f"{index}\t{os.path.relpath(frame.image, summary.root)}\t{target}")
    (tmp_path / "odd.lst").write_text("\n".join(renamed) + "\n")
    config = load_test_config(None, overrides(root, tmp_path / "out", f"data.image_list={tmp_path / 'odd.lst'}"))
    with caplog.at_level(logging.WARNING):
        run = run_test(config, show_progress=False)
    assert run.metrics.num_images == 2 and "iIoU" not in run.metrics.summary
    notes = [r for r in caplog.records if "iIoU is not computed" in r.getMessage()]
    assert len(notes) == 1 and "does not end in _gtFine_labelIds.png" in notes[0].getMessage()
