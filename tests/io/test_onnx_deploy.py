"""The deployment ONNX of tools/export_model.py: pixel layout, resized and label outputs, and the
input contract in its metadata_props (checked against cv2, NumPy and the official tables)."""
import json

import tusimple_duc  # noqa: F401  (before mxnet)
import cv2
import mxnet as mx
import numpy as np
import onnx
import onnxruntime
import pytest

from io_helpers import load_tool, numpy_softmax, random_checkpoint
from tusimple_duc.errors import ConfigError
from tusimple_duc.io.checkpoint import save_checkpoint
from tusimple_duc.io.export import export_model
from tusimple_duc.models.presets import get_model

# Cityscapes trainId 0..18 -> labelId, from the official labels table (cityscapesscripts helpers/labels.py).
OFFICIAL_LABEL_IDS = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
VOC_NAMES_HEAD = ["background", "aeroplane", "bicycle"]


def _checkpoint(tmp_path, preset, seed=11):
    return random_checkpoint(tmp_path, preset, 1, seed, 32)


def _run(path, x):
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {"data": x})[0], session


def _cv2_resized(prob, shape):
    return np.stack([np.stack([cv2.resize(c.astype(np.float32), (shape[1], shape[0]),
                                          interpolation=cv2.INTER_LINEAR) for c in image]) for image in prob])


@pytest.mark.parametrize("preset, stride", [("tiny_duc_hdc", 2), ("tiny_baseline", 8), ("tiny_deconv", 1)])
def test_outputs_are_pixel_layout_resized_and_labels(tmp_path, preset, stride):
    prefix, net = _checkpoint(tmp_path, preset)
    x = np.random.RandomState(3).uniform(-100, 100, (2, 3, 48, 80)).astype(np.float32)
    expected = numpy_softmax(net, x)
    assert expected.shape == (2, 19, 48 // stride, 80 // stride) and expected.std() > 1e-3
    outputs = {}
    for kind in ("probabilities", "resized", "labels"):
        path = str(tmp_path / f"{kind}.onnx")
        export_model(prefix, 1, str(tmp_path / f"out_{kind}"), preset, shape=(64, 64), onnx_path=path, onnx_output=kind)
        outputs[kind], session = _run(path, x)
        assert [o.name for o in session.get_outputs()] == ["seg_label" if kind == "labels" else "seg_prob"]
    np.testing.assert_allclose(outputs["probabilities"], expected, rtol=0, atol=1e-4)
    resized = _cv2_resized(expected, (48, 80))
    np.testing.assert_allclose(outputs["resized"], resized, rtol=0, atol=1e-4)
    assert outputs["labels"].shape == (2, 48, 80) and outputs["labels"].dtype == np.int64
    margin = np.sort(resized, axis=1)[:, -1] - np.sort(resized, axis=1)[:, -2]
    clear = margin > 1e-3  # pixels whose argmax no float rounding can change
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(outputs["labels"][clear], resized.argmax(axis=1)[clear])


def test_metadata_states_the_input_contract_and_the_dataset(tmp_path, capsys):
    prefix, _ = _checkpoint(tmp_path, "tiny_duc_hdc")
    tool = load_tool("export_model")
    path = str(tmp_path / "labels.onnx")
    assert tool.main(["--prefix", prefix, "--epoch", "1", "--out", str(tmp_path / "out"), "--shape", "64,64",
                      "--onnx", path, "--onnx-output", "labels"]) == 0
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert meta["channel_order"] == "RGB" and meta["layout"] == "NCHW" and meta["scale"] == "1.0"
    assert json.loads(meta["mean"]) == [122.675, 116.669, 104.008]  # the released model's mean
    assert meta["stride"] == "8" and meta["dataset"] == "cityscapes"
    assert json.loads(meta["label_ids"]) == OFFICIAL_LABEL_IDS
    assert json.loads(meta["class_names"])[:2] == ["road", "sidewalk"] and len(json.loads(meta["class_names"])) == 19
    assert meta["output"].startswith("seg_label (N, H, W) int64")
    # the symbol JSON stays the released drop-in graph
    assert mx.sym.load(str(tmp_path / "out-symbol.json")).list_outputs() == ["seg_loss_output"]


def test_metadata_of_a_training_config_uses_its_dataset_and_mean(tmp_path):
    from tusimple_duc.pipelines.deploy import export_for_deployment

    net = get_model("tiny_duc_hdc", num_classes=21)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    prefix = str(tmp_path / "voc")
    save_checkpoint(net, prefix, 1)
    config = tmp_path / "voc.cfg"
    config.write_text("[network]\npreset = tiny_duc_hdc\nlabel_num = 21\n[data]\ndataset = voc\n"
                      "rgb_mean = 100, 110, 120\ntrain_list = x.lst\n")
    path = str(tmp_path / "voc.onnx")
    export_for_deployment(prefix, 1, str(tmp_path / "out"), config=str(config), shape=(32, 32), onnx_path=path)
    meta = {p.key: p.value for p in onnx.load(path).metadata_props}
    assert meta["dataset"] == "voc" and json.loads(meta["mean"]) == [100.0, 110.0, 120.0]
    assert json.loads(meta["label_ids"]) == list(range(21))
    assert json.loads(meta["class_names"])[:3] == VOC_NAMES_HEAD
    with pytest.raises(ConfigError, match="the network has 21 classes, dataset kitti has 2"):
        export_for_deployment(prefix, 1, str(tmp_path / "k"), config=str(config), dataset="kitti",
                              shape=(32, 32), onnx_path=str(tmp_path / "k.onnx"))
    assert not (tmp_path / "k.onnx").exists() and not (tmp_path / "k-0000.params").exists()


def test_an_unknown_output_is_one_line_before_anything_is_written(tmp_path):
    prefix, _ = _checkpoint(tmp_path, "tiny_duc_hdc")
    with pytest.raises(ConfigError, match="ONNX output 'logits': expected one of probabilities, resized, labels"):
        export_model(prefix, 1, str(tmp_path / "out"), "tiny_duc_hdc", shape=(32, 32),
                     onnx_path=str(tmp_path / "x.onnx"), onnx_output="logits")
    assert not (tmp_path / "out-0000.params").exists()
