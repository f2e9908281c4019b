"""tusimple_duc.test: Tester and Predictor on a tiny checkpoint vs test.py's outputs and an
independent released-protocol computation."""
import configparser
import os

import cv2
import mxnet as mx
import numpy as np
import pytest

from compat_helpers import IMAGE_SIZE
from tusimple_duc.config import load_test_config
from tusimple_duc.pipelines.segment import run_test
from tusimple_duc.test.predictor import Predictor
from tusimple_duc.test.tester import Tester

MEAN = np.array([122.675, 116.669, 104.008], dtype=np.float32)


def _parser(cityscapes_root, tiny_checkpoint, result_dir, scales="1"):
    model_dir, prefix, epoch, _ = tiny_checkpoint
    config = configparser.RawConfigParser()
    config["model"] = {"model_dir": model_dir, "model_prefix": prefix, "model_epoch": str(epoch), "gpu": "-1",
                       "result_dir": result_dir, "label_num": "19"}
    config["network"] = {"preset": "tiny_duc_hdc"}
    config["data"] = {"image_list": os.path.join(cityscapes_root, "lists", "val.lst"),
                      "test_img_dir": cityscapes_root, "gt_dir": cityscapes_root, "ds_rate": "8", "cell_width": "2",
                      "test_shape": "64,128", "result_shape": "64,128", "rgb_mean": "122.675,116.669,104.008",
                      "test_scales": scales}
    return config


def _val_image(cityscapes_root):
    line = open(os.path.join(cityscapes_root, "lists", "val.lst")).readline().split("\t")
    return cv2.imread(os.path.join(cityscapes_root, line[1]))[:, :, ::-1].copy(), os.path.basename(line[1])


def test_tester_writes_what_test_py_writes(cityscapes_root, tiny_checkpoint, tmp_path):
    parser = _parser(cityscapes_root, tiny_checkpoint, str(tmp_path / "results"))
    overrides = [f"{s}.{k}={v}" for s in parser.sections() for k, v in parser.items(s)]
    run = run_test(load_test_config(None, overrides), show_progress=False)
    image, _ = _val_image(cityscapes_root)
    written = cv2.imread(os.path.join(run.result_dir, "score", run.images[0]), cv2.IMREAD_UNCHANGED)

    tester = Tester(parser)
    rets = tester.predict_single(image, ret_converted=True, ret_softmax=True, ret_heat_map=True)
    np.testing.assert_array_equal(rets["converted"], written)
    assert rets["raw"].dtype == np.uint8 and rets["raw"].shape == IMAGE_SIZE
    np.testing.assert_array_equal(rets["raw"], rets["softmax"].argmax(axis=0))
    assert float(rets["softmax"].max(axis=0).mean()) == pytest.approx(run.confidences[0], abs=1e-6)
    heat = (rets["softmax"].max(axis=0) * 256 - 1).astype(np.uint8)
    np.testing.assert_array_equal(rets["heat_map"], cv2.applyColorMap(heat, cv2.COLORMAP_JET))
    assert set(Tester.predict_single(tester, image)) == {"raw"}


def test_tester_softmax_is_the_released_protocol(cityscapes_root, tiny_checkpoint, tmp_path):
    _, _, _, net = tiny_checkpoint
    image, _ = _val_image(cityscapes_root)
    tester = Tester(_parser(cityscapes_root, tiny_checkpoint, str(tmp_path / "r")))
    # independent: mean-subtract, forward, softmax, bilinear resize of the (H/2, W/2) map to (H, W)
    x = mx.nd.array((image.astype(np.float32) - MEAN).transpose(2, 0, 1)[None])
    half = mx.nd.softmax(net(x), axis=1).asnumpy()[0]
    expected = np.stack([cv2.resize(p, IMAGE_SIZE[::-1], interpolation=cv2.INTER_LINEAR) for p in half])
    np.testing.assert_allclose(tester.predict_single(image, ret_softmax=True)["softmax"], expected, atol=1e-4)
    [data] = tester.preprocess(image)
    np.testing.assert_allclose(data, x.asnumpy(), atol=1e-4)


def test_predictor_on_released_format_modules_matches_the_tester(cityscapes_root, tiny_checkpoint, tmp_path):
    model_dir, prefix, epoch, _ = tiny_checkpoint
    tester = Tester(_parser(cityscapes_root, tiny_checkpoint, str(tmp_path / "r"), scales="1,0.5"))
    image, _ = _val_image(cityscapes_root)
    inputs = tester.preprocess(image)
    modules = []
    for data in inputs:
        module = mx.mod.Module.load(os.path.join(model_dir, prefix), epoch, context=mx.cpu())
        module.bind(data_shapes=[("data", data.shape)], for_training=False)
        modules.append(module)
    predictor = Predictor(modules, label_num=19, ds_rate=8, cell_width=2, result_shape=IMAGE_SIZE,
                          test_scales=[1, 0.5])
    probabilities = predictor.predict(inputs)
    assert probabilities.shape == (19,) + IMAGE_SIZE
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, tester.predict_single(image, ret_softmax=True)["softmax"], atol=1e-4)
