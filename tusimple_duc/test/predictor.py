"""``Predictor``: the original's multi-scale DUC predictor over bound ``mx.mod.Module`` s.

``predict(imgs)`` takes one preprocessed (1, 3, h_i, w_i) array per test scale (mean-subtracted
RGB, sides multiples of ``ds_rate``), runs module i on array i, lays the (1, L, r*r*h*w)
output out as pixels (:func:`tusimple_duc.layout.cells_to_pixels`), resizes it bilinearly
to ``result_shape`` (:func:`tusimple_duc.inference.scales.add_resized`) and averages over
the scales: (L, H, W) float32 probabilities. Like the original it resizes the whole
(padded) prediction; the package's own :class:`tusimple_duc.inference.predictor.Predictor`
crops the padding first.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import mxnet as mx
import numpy as np

from tusimple_duc.inference.scales import add_resized
from tusimple_duc.layout import cells_to_pixels


class Predictor:
    """Runs one bound module per test scale and averages their full-resolution probabilities.

    Parameters
    ----------
    modules : one ``mx.mod.Module`` per scale, bound for its input shape (``for_training=False``),
        output (1, L, r*r*h*w) probabilities (the released symbol).
    label_num : L.
    ds_rate : output stride d of the network.
    cell_width : DUC cell width c (r = d / c).
    result_shape : (rows, cols) of the result.
    test_scales : the scales, one per module.
    """

    def __init__(self, modules: Sequence[mx.mod.Module], label_num: int, ds_rate: int = 8, cell_width: int = 2,
                 result_shape: Tuple[int, int] = (1024, 2048), test_scales: Sequence[float] = (1,)) -> None:
        self._modules = list(modules)
        self._label_num = label_num
        self._ds_rate = ds_rate
        self._cell_width = cell_width
        self._rpn_width = ds_rate // cell_width
        self._result_shape = tuple(int(v) for v in result_shape)
        self._test_scales = list(test_scales)
        self._im_shape = None

    def predict(self, imgs: Sequence[np.ndarray]) -> np.ndarray:
        """(L, rows, cols) float32 probabilities at ``result_shape``, averaged over the scales.

        ``imgs[i]``: (1, 3, h, w) float32 network input of scale i, ``h, w`` multiples of ``ds_rate``.
        """
        accumulator = np.zeros((self._label_num,) + self._result_shape, dtype=np.float32)
        ratio = self._rpn_width
        for module, img in zip(self._modules, imgs[:len(self._test_scales)]):
            _, _, height, width = img.shape
            module.forward(mx.io.DataBatch(data=[mx.nd.array(img)]), is_train=False)
            flat = module.get_outputs()[0].asnumpy()[0]
            cells = flat.reshape(self._label_num, ratio * ratio, height // self._ds_rate, width // self._ds_rate)
            pixels = cells_to_pixels(cells, ratio)
            add_resized(pixels, pixels.shape[1:], accumulator)
        accumulator /= np.float32(len(self._test_scales))
        return accumulator
