"""Dense upsampling convolution (DUC): the cell <-> pixel rearrangement in MXNet.

The layout is the one of :mod:`tusimple_duc.layout` (and of the released checkpoint):
with ``r = d / c``, channel ``l*r*r + dy*r + dx`` of feature cell ``(y, x)`` is the score of
class ``l`` for pixel ``(r*y + dy, r*x + dx)``. All functions take ``F`` (``mx.nd`` or
``mx.sym``) and use only reshape special codes, so they hybridize and work for any spatial
size.
"""
from __future__ import annotations

from mxnet.gluon import HybridBlock


def cells_to_pixels(F, cells, ratio: int):
    """``(N, L*r*r, h, w) -> (N, L, h*r, w*r)`` (the DUC upsampling)."""
    if ratio == 1:
        return cells
    x = F.reshape(cells, shape=(0, -4, -1, ratio * ratio, -2))  # (N, L, r*r, h, w)
    x = F.reshape(x, shape=(0, 0, -4, ratio, ratio, -2))        # (N, L, dy, dx, h, w)
    x = F.transpose(x, axes=(0, 1, 4, 2, 5, 3))                 # (N, L, h, dy, w, dx)
    return F.reshape(x, shape=(0, 0, -3, -3))                   # (N, L, h*r, w*r)


def pixels_to_cells(F, pixels, ratio: int):
    """Inverse of :func:`cells_to_pixels`: ``(N, L, h*r, w*r) -> (N, L*r*r, h, w)``."""
    if ratio == 1:
        return pixels
    x = F.reshape(pixels, shape=(0, 0, -4, -1, ratio, -2))      # (N, L, h, dy, W)
    x = F.reshape(x, shape=(0, 0, 0, 0, -4, -1, ratio))         # (N, L, h, dy, w, dx)
    x = F.transpose(x, axes=(0, 1, 3, 5, 2, 4))                 # (N, L, dy, dx, h, w)
    x = F.reshape(x, shape=(0, -3, -2))                         # (N, L*r, dx, h, w)
    return F.reshape(x, shape=(0, -3, -2))                      # (N, L*r*r, h, w)


class DUCRearrange(HybridBlock):
    """Parameter-free block: ``(N, L*r*r, h, w) -> (N, L, h*r, w*r)``."""

    def __init__(self, ratio: int) -> None:
        super().__init__(prefix="")
        if ratio < 1:
            raise ValueError(f"DUC ratio must be >= 1, got {ratio}")
        self.ratio = ratio

    def hybrid_forward(self, F, x):
        return cells_to_pixels(F, x, self.ratio)
