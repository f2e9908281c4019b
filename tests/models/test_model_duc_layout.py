"""The Gluon DUC rearrangement agrees with tusimple_duc.layout (the released layout)."""
import tusimple_duc  # noqa: F401  (before mxnet)
import mxnet as mx
import numpy as np
import pytest

from tusimple_duc import layout
from tusimple_duc.models.duc import DUCRearrange, cells_to_pixels, pixels_to_cells


def _pattern(n, num_classes, r, h, w):
    """Cells whose value encodes (n, l, dy, dx, y, x) uniquely."""
    cells = np.zeros((n, num_classes * r * r, h, w), dtype=np.float32)
    for b in range(n):
        for c in range(num_classes * r * r):
            cells[b, c] = (b * 1000 + c) * 1000 + np.arange(h * w).reshape(h, w)
    return cells


@pytest.mark.parametrize("r,h,w", [(1, 3, 2), (2, 3, 5), (4, 2, 3), (8, 2, 2)])
def test_known_pattern(r, h, w):
    n, num_classes = 2, 3
    cells = _pattern(n, num_classes, r, h, w)
    out = cells_to_pixels(mx.nd, mx.nd.array(cells), r).asnumpy()
    assert out.shape == (n, num_classes, h * r, w * r)
    for b in range(n):
        for l in range(num_classes):
            for dy in range(r):
                for dx in range(r):
                    for y in range(h):
                        for x in range(w):
                            assert out[b, l, r * y + dy, r * x + dx] == \
                                cells[b, l * r * r + dy * r + dx, y, x]


@pytest.mark.parametrize("r", [1, 2, 4])
def test_matches_layout_module_and_inverts(r):
    cells = np.random.RandomState(0).rand(2, 5 * r * r, 3, 4).astype(np.float32)
    expected = layout.cells_to_pixels(cells.reshape(2, 5, r * r, 3, 4), r)
    pixels = cells_to_pixels(mx.nd, mx.nd.array(cells), r).asnumpy()
    np.testing.assert_array_equal(pixels, expected)
    back = pixels_to_cells(mx.nd, mx.nd.array(pixels), r).asnumpy()
    np.testing.assert_array_equal(back, cells)


def test_symbolic_and_hybridized_agree():
    r = 4
    cells = np.random.RandomState(1).rand(1, 2 * r * r, 5, 3).astype(np.float32)
    block = DUCRearrange(r)
    eager = block(mx.nd.array(cells)).asnumpy()
    block.hybridize()
    hybrid = block(mx.nd.array(cells)).asnumpy()
    np.testing.assert_array_equal(eager, hybrid)
    sym = cells_to_pixels(mx.sym, mx.sym.var("x"), r)
    assert sym.infer_shape(x=(1, 2 * r * r, 5, 3))[1] == [(1, 2, 20, 12)]
    # the same symbol works for another size: nothing is hard-coded but r
    assert sym.infer_shape(x=(3, 2 * r * r, 7, 9))[1] == [(3, 2, 28, 36)]


def test_released_view_lines_up_with_label_layout():
    r, num_classes, h, w = 4, 3, 2, 3
    height, width = h * r, w * r
    # score of class l at pixel (Y, X) := 100 * l + label(Y, X) for an arbitrary label map
    label = np.random.RandomState(2).randint(0, 19, size=(height, width)).astype(np.float32)
    cells = np.zeros((1, num_classes * r * r, h, w), dtype=np.float32)
    for l in range(num_classes):
        for dy in range(r):
            for dx in range(r):
                cells[0, l * r * r + dy * r + dx] = 100 * l + label[dy::r, dx::r]
    # the released graph's Reshape(shape=(0, L, -1)) (io/symbol.py ``cls_score_reshape``)
    view = mx.nd.reshape(mx.nd.array(cells), shape=(0, num_classes, -1)).asnumpy()
    assert view.shape == (1, num_classes, r * r * h * w)
    flat_label = layout.label_to_duc_layout(label, r)
    for l in range(num_classes):
        np.testing.assert_array_equal(view[0, l] - 100 * l, flat_label)
