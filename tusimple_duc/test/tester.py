"""``Tester``: the original's single-image tester, over the package's test pipeline.

``Tester(config)`` takes the original's ``ConfigParser`` test config (or a config path, or
a :class:`~tusimple_duc.config.TestConfig`): the keys become the package's test config
(``load_test_config``), the network and checkpoint are loaded as ``test.py`` does
(:func:`tusimple_duc.pipelines.segment.load_network`, ``gpu = -1`` = CPU) and
``predict_single`` runs :class:`tusimple_duc.inference.predictor.Predictor` with the
config's protocol and test.py's forward (the fused CPU graph unless ``[inference] cpu_fast``
is off), so its probabilities are test.py's.
"""
from __future__ import annotations

import math
from typing import Dict, List

import cv2
import numpy as np

from tusimple_duc.config import TestConfig, load_test_config
from tusimple_duc.core.config_parser import ConfigSource, config_from_parser
from tusimple_duc.core.utils import get_palette
from tusimple_duc.data.labels import cityscapes_train_ids_to_ids
from tusimple_duc.inference.predictor import Predictor, spec_from_config
from tusimple_duc.inference.scales import scale_image, scaled_shape
from tusimple_duc.inference.windows import network_input, padded_shape
from tusimple_duc.data.lists import read_list
from tusimple_duc.pipelines.segment import load_network, select_contexts, select_forward
from tusimple_duc.viz.colorize import colorize as colorize_labels


def test_config_from_parser(config: ConfigSource) -> TestConfig:
    """The package's :class:`TestConfig` of a ``ConfigParser`` (every key as a ``--set`` override) or path."""
    return config_from_parser(config, TestConfig, load_test_config)


test_config_from_parser.__test__ = False  # not a pytest test


class Tester:
    """Segments single RGB images with the checkpoint and protocol of a test config."""

    __test__ = False  # not a pytest class

    def __init__(self, config: ConfigSource) -> None:
        self.config = test_config_from_parser(config)
        model, data = self.config.model, self.config.data
        self.model_dir, self.model_prefix, self.model_epoch = model.model_dir, model.model_prefix, model.model_epoch
        self.label_num = model.label_num
        self.contexts = select_contexts(model.gpu)
        self.ctx = self.contexts[0]
        self.net = load_network(self.config, self.contexts)
        self.ds_rate = self.net.output_stride
        self.cell_width = self.net.spec.cell_width
        self.test_shape = list(data.test_shape)
        self.result_shape = list(data.result_shape) if data.result_shape else None
        self.rgb_mean = list(data.rgb_mean)
        self.test_scales = list(self.config.scales)
        self.cell_shapes = [[math.ceil(side * scale / self.ds_rate) * self.ds_rate for side in self.test_shape]
                            for scale in self.test_scales]
        calibration_entries = read_list(data.image_list) if data.image_list else []
        forward = select_forward(self.config, self.net, self.contexts, calibration_entries, own_images=False)
        self.predictor = Predictor(self.net, spec_from_config(self.config), contexts=self.contexts, forward=forward)

    def preprocess(self, im: np.ndarray) -> List[np.ndarray]:
        """One (1, 3, h, w) float32 network input per test scale: resized, cut to its top-left
        ``int(test_shape * scale)`` pixels (as the original; not when ``result_shape`` is None, like
        test.py), mean-subtracted, padded bottom/right with the mean colour to a multiple of
        ``ds_rate`` (RGB uint8 (H, W, 3) in)."""
        inputs = []
        crop = self.predictor.spec.crop
        for scale in self.test_scales:
            scaled = scale_image(im, scale)
            if crop is not None:
                rows, cols = scaled_shape(crop, scale)
                scaled = scaled[:rows, :cols]
            shape = padded_shape(scaled.shape[:2], self.ds_rate)
            inputs.append(network_input(scaled, tuple(self.rgb_mean), shape)[None])
        return inputs

    @staticmethod
    def convert_label(label: np.ndarray) -> np.ndarray:
        """trainIds (H, W) -> Cityscapes labelIds (H, W) uint8 (255 -> 0)."""
        return cityscapes_train_ids_to_ids(label)

    @staticmethod
    def colorize(labels: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB colours of trainIds (H, W) (Cityscapes palette, 255 black)."""
        palette = np.asarray(get_palette(), dtype=np.uint8).reshape(256, 3)
        return colorize_labels(np.asarray(labels, dtype=np.uint8), palette)

    def predict_single(self, img: np.ndarray, ret_converted: bool = False, ret_softmax: bool = False,
                       ret_heat_map: bool = False) -> Dict[str, np.ndarray]:
        """Segment one (H, W, 3) uint8 RGB image.

        Returns
        -------
        dict: ``raw`` (H', W') uint8 trainIds at ``result_shape``; with the flags also
        ``softmax`` (L, H', W') float32 probabilities, ``heat_map`` (H', W', 3) uint8 BGR JET map of
        the max probability, ``converted`` (H', W') uint8 labelIds.
        """
        probabilities = self.predictor.probabilities(img)
        rets: Dict[str, np.ndarray] = {}
        if ret_softmax:
            rets["softmax"] = probabilities
        if ret_heat_map:
            heat = probabilities.max(axis=0) * 256 - 1
            rets["heat_map"] = cv2.applyColorMap(heat.astype(np.uint8), cv2.COLORMAP_JET)
        rets["raw"] = probabilities.argmax(axis=0).astype(np.uint8)
        if ret_converted:
            rets["converted"] = self.convert_label(rets["raw"])
        return rets
