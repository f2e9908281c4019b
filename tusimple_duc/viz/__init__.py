"""Visualisation: palette colouring, overlays and mosaics (:mod:`.colorize`), and matplotlib
figures of evaluation results (:mod:`.plots`, imported on its own so that colouring does not
load matplotlib)."""
from tusimple_duc.viz.colorize import PALETTES, colorize, mosaic, overlay, segmentation_mosaic, write_rgb_png

__all__ = ["PALETTES", "colorize", "mosaic", "overlay", "segmentation_mosaic", "write_rgb_png"]
