"""The rest of the original's Python API: ``Solver(config).fit()``, ``ImageListTester``,
``get_cityscapes_list_augmented``, ``category2labels``, ``assureSingleInstanceName`` and
``Tester.preprocess``'s ``test_shape`` crop, against hand-derived values and the package's runs."""
import configparser
import importlib.util
import os

import cv2
import numpy as np
import pytest

from compat_helpers import IMAGE_SIZE, ROOT
from tusimple_duc.config import load_train_config
from tusimple_duc.core import cityscapes_labels
from tusimple_duc.engine.run import train
from tusimple_duc.pipelines.segment import run_test
from tusimple_duc.test.tester import Tester

MEAN = np.array([122.675, 116.669, 104.008], dtype=np.float32)


def load_module(relative_path: str):
    """A module of the original's script folders (train/, test/, data_prep/) by its file."""
    path = os.path.join(ROOT, relative_path)
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ train/solver.py
def train_parser(cityscapes_root: str, model_dir: str) -> configparser.RawConfigParser:
    config = configparser.RawConfigParser()
    config.read_dict({
        "env": {"use_cpu": "True", "kv_store": "local", "seed": "0"},
        "network": {"preset": "tiny_duc_hdc", "label_num": "19"},
        "model": {"num_epochs": "1", "model_dir": model_dir, "save_model_prefix": "tiny", "checkpoint_interval": "1",
                  "lr": "0.01", "lr_policy": "poly"},
        "data": {"data_dir": cityscapes_root, "label_dir": cityscapes_root, "use_val": "False",
                 "train_list": os.path.join(cityscapes_root, "lists", "train_7fold.lst"), "batch_size": "7",
                 "ds_rate": "8", "convert_label": "True", "scale_factors": "1", "crop_shape": "32,32",
                 "use_mirror": "False", "use_random_crop": "False", "random_bound": "0,0", "num_workers": "0"}})
    return config


def test_solver_fit_trains_as_train_py(cityscapes_root, tmp_path):
    solver_module = load_module("train/solver.py")
    parser = train_parser(cityscapes_root, str(tmp_path / "solver"))
    result = solver_module.Solver(parser).fit()
    overrides = [f"{s}.{k}={v}" for s in parser.sections() for k, v in parser.items(s)]
    overrides[overrides.index(f"model.model_dir={tmp_path / 'solver'}")] = f"model.model_dir={tmp_path / 'engine'}"
    expected = train(load_train_config(None, overrides))
    assert (result.epoch, result.updates) == (1, 2)  # 14 samples, batch 7
    assert result.params_sha1 == expected.params_sha1 and result.checkpoint and os.path.isfile(result.checkpoint)


def test_solver_refuses_a_bad_key_in_one_line(cityscapes_root, tmp_path):
    from tusimple_duc.errors import ConfigError

    parser = train_parser(cityscapes_root, str(tmp_path / "m"))
    parser.set("data", "batch_size", "seven")
    with pytest.raises(ConfigError, match="batch_size"):
        load_module("train/solver.py").Solver(parser)


# ------------------------------------------------------------------ test/predict_full_image.py
def test_parser(cityscapes_root, tiny_checkpoint, result_dir, test_shape="64,128") -> configparser.RawConfigParser:
    model_dir, prefix, epoch, _ = tiny_checkpoint
    config = configparser.RawConfigParser()
    config.read_dict({
        "model": {"model_dir": model_dir, "model_prefix": prefix, "model_epoch": str(epoch), "gpu": "-1",
                  "result_dir": result_dir, "label_num": "19"},
        "network": {"preset": "tiny_duc_hdc"},
        "data": {"image_list": os.path.join(cityscapes_root, "lists", "val.lst"), "test_img_dir": cityscapes_root,
                 "gt_dir": cityscapes_root, "test_shape": test_shape, "result_shape": "64,128",
                 "test_scales": "1,0.5"}})
    return config


test_parser.__test__ = False


def test_image_list_tester_writes_what_test_py_writes(cityscapes_root, tiny_checkpoint, tmp_path):
    module = load_module("test/predict_full_image.py")
    tester = module.ImageListTester(test_parser(cityscapes_root, tiny_checkpoint, str(tmp_path / "list")))
    line = open(os.path.join(cityscapes_root, "lists", "val.lst")).readline()
    index, image, label = line.rstrip("\n").split("\t")
    expected = run_test(tester.config, show_progress=False)
    everything = tester.predict_all()
    assert everything.images == expected.images == [os.path.basename(label)]
    assert everything.confidences == pytest.approx(expected.confidences, abs=1e-6)

    confidence, image_path = tester.predict_single(f"{index}\t{image}\n")  # two fields: named by the image
    assert image_path == os.path.join(cityscapes_root, image)
    assert confidence == pytest.approx(expected.confidences[0], abs=1e-6)
    single = cv2.imread(str(tmp_path / "list" / "score" / os.path.basename(image)), cv2.IMREAD_UNCHANGED)
    listed = cv2.imread(str(tmp_path / "list" / "score" / os.path.basename(label)), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(single, listed)
    assert (tmp_path / "list" / "visualization" / os.path.basename(image)).is_file()


def test_image_list_tester_predict_single_leaves_the_confidence_files(cityscapes_root, tiny_checkpoint, tmp_path):
    """The original's predict_single wrote visualization/ and score/ only: the confidence files of the
    list (``<model_prefix><model_epoch>.txt``, confidence.txt) keep every image of predict_all."""
    line = open(os.path.join(cityscapes_root, "lists", "val.lst")).readline()
    index, image, _ = line.rstrip("\n").split("\t")
    lines = [line, f"{index}\t{image}\n"]  # two outputs: named by the label, then by the image
    (tmp_path / "two.lst").write_text("".join(lines))
    parser = test_parser(cityscapes_root, tiny_checkpoint, str(tmp_path / "list"))
    parser.set("data", "image_list", str(tmp_path / "two.lst"))
    tester = load_module("test/predict_full_image.py").ImageListTester(parser)
    tester.predict_all()
    _, prefix, epoch, _ = tiny_checkpoint
    files = [tmp_path / "list" / f"{prefix}{epoch}.txt", tmp_path / "list" / "confidence.txt"]
    before = [path.read_text() for path in files]
    assert all(text.count("\n") == len(lines) for text in before)
    tester.predict_single(lines[0])
    assert [path.read_text() for path in files] == before


def original_preprocess(im, test_shape, test_scales, rgb_mean):
    """The original's Tester.preprocess restated for images at least test_shape large (its padding is then 0)."""
    imgs = []
    for scale in test_scales:
        img = cv2.resize(im, (int(im.shape[1] * scale), int(im.shape[0] * scale)), interpolation=cv2.INTER_LINEAR)
        img = img.astype(np.float32)[:int(test_shape[0] * scale), :int(test_shape[1] * scale)]
        img = np.transpose(img, (2, 0, 1)).copy()
        for i in range(3):
            img[i] -= rgb_mean[i]
        imgs.append(img[None])
    return imgs


def test_tester_preprocess_crops_to_test_shape_as_the_original(cityscapes_root, tiny_checkpoint, tmp_path):
    tester = Tester(test_parser(cityscapes_root, tiny_checkpoint, str(tmp_path / "r"), test_shape="48,96"))
    image = np.random.default_rng(3).integers(0, 256, IMAGE_SIZE + (3,), dtype=np.uint8)  # 64x128 > 48x96
    inputs = tester.preprocess(image)
    expected = original_preprocess(image, (48, 96), (1, 0.5), MEAN)
    assert [x.shape for x in inputs] == [(1, 3, 48, 96), (1, 3, 24, 48)]
    for got, want in zip(inputs, expected):
        np.testing.assert_allclose(got, want, atol=1e-4)


# ------------------------------------------------------------------ data_prep/get_cityscapes_list.py
def test_get_cityscapes_list_augmented_writes_the_original_list(tmp_path, capsys):
    root = tmp_path / "cs"
    stems = ["aachen/aachen_000000_000019", "aachen/aachen_000001_000019", "bonn/bonn_000000_000019"]
    for stem in stems:
        image = root / "leftImg8bit" / "train" / f"{stem}_leftImg8bit.png"
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(b"png")
    for stem in (stems[0], stems[2]):  # the second image has no label
        label = root / "gtFine" / "train" / f"{stem}_gtFine_labelIds.png"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_bytes(b"png")
    get_list = load_module("data_prep/get_cityscapes_list.py").get_cityscapes_list_augmented
    get_list(str(root), "leftImg8bit/train", "gtFine/train", str(tmp_path / "all.lst"))
    get_list(str(root), "leftImg8bit/train", "gtFine/train", str(tmp_path / "half.lst"), sample_rate=2)

    def lines(index, stem):
        image = f"{root}/leftImg8bit/train/{stem}_leftImg8bit.png"
        label = f"{root}/gtFine/train/{stem}_gtFine_labelIds.png"
        return [f"{index}\t{image}\t{label}\t512\t{256 * i}\n" for i in range(1, 8)]

    assert (tmp_path / "all.lst").read_text() == "".join(lines(1, stems[0]) + lines(2, stems[2]))
    assert (tmp_path / "half.lst").read_text() == "".join(lines(2, stems[2]))
    assert f"dismiss {root}/leftImg8bit/train/{stems[1]}_leftImg8bit.png" in capsys.readouterr().out


# ------------------------------------------------------------------ cityscapes_labels
def test_category2labels_and_assure_single_instance_name():
    flat = [label.name for label in cityscapes_labels.category2labels["flat"]]
    assert flat == ["road", "sidewalk", "parking", "rail track"]
    assert list(cityscapes_labels.category2labels) == ["void", "flat", "construction", "object", "nature", "sky",
                                                       "human", "vehicle"]
    assert sum(len(v) for v in cityscapes_labels.category2labels.values()) == 35
    cases = {"car": "car", "cargroup": "car", "persongroup": "person", "polegroup": "polegroup", "foo": None,
             "foogroup": None, "skygroup": None, "roadgroup": None}
    for name, single in cases.items():
        assert cityscapes_labels.assureSingleInstanceName(name) == single, name


def test_train_end2end_runs_train_py(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["train_model.py", "--help"])
    with pytest.raises(SystemExit) as exited:
        load_module("train/train_model.py").train_end2end()
    assert exited.value.code == 0 and "--resume" in capsys.readouterr().out
