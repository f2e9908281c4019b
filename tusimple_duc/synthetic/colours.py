"""Colours of the synthetic scenes: per-kind colour distributions that overlap between classes.

Each kind has a few mean RGB colours (one is picked per object), a per-object spread (std of a
Gaussian added to the mean, grey levels) and a grain (std of the per-pixel texture, grey levels).
Kinds are Cityscapes label names for annotated shapes, plus image-only details (windows, lane
markings, tyres, ...).
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np

Rgb = Tuple[float, float, float]

_PERSON = ((60, 60, 70), (120, 40, 40), (40, 50, 90), (150, 140, 120), (30, 30, 30), (90, 110, 80))
_POLE = ((110, 110, 115), (90, 95, 90), (140, 140, 135))

#: kind -> (mean colours, per-object spread, per-pixel grain).
KIND_COLOURS: Dict[str, Tuple[Sequence[Tuple[int, int, int]], float, float]] = {
    "sky": (((150, 185, 225), (190, 205, 220), (125, 165, 215), (210, 215, 220)), 10, 3),
    "road": (((100, 98, 104), (118, 112, 115), (85, 85, 90)), 10, 9),
    "sidewalk": (((150, 135, 140), (165, 160, 150), (135, 125, 130)), 12, 11),
    "parking": (((120, 110, 118), (135, 125, 125)), 10, 10),
    "rail track": (((95, 85, 78), (110, 100, 90)), 8, 16),
    "building": (((170, 160, 150), (140, 130, 125), (185, 155, 120), (120, 110, 105),
                  (205, 195, 180), (150, 95, 75), (160, 165, 170)), 12, 8),
    "wall": (((165, 155, 140), (140, 140, 135), (175, 165, 150)), 15, 10),
    "fence": (((120, 110, 95), (100, 105, 100), (150, 140, 120)), 15, 12),
    "guard rail": (((175, 178, 182), (160, 160, 165)), 8, 7),
    "pole": (_POLE, 12, 5),
    "polegroup": (_POLE, 12, 5),
    "traffic light": (((40, 40, 38), (60, 60, 50), (30, 35, 30)), 8, 5),
    "traffic sign": (((205, 200, 40), (200, 40, 35), (40, 70, 170), (225, 225, 225)), 12, 6),
    "vegetation": (((70, 100, 40), (55, 85, 35), (90, 115, 55)), 12, 22),
    "terrain": (((120, 140, 70), (140, 135, 90), (105, 125, 65)), 15, 16),
    "ground": (((140, 120, 100), (125, 115, 105)), 12, 12),
    "static": (((90, 90, 80), (60, 80, 60), (120, 100, 80)), 15, 8),
    "person": (_PERSON, 25, 9),
    "rider": (_PERSON, 25, 9),
    "car": (((30, 30, 35), (200, 200, 205), (125, 125, 130), (150, 25, 25), (25, 45, 120),
             (225, 225, 225), (65, 75, 65)), 10, 6),
    "truck": (((210, 210, 200), (150, 40, 30), (60, 90, 60), (200, 200, 210)), 12, 7),
    "bus": (((230, 200, 45), (220, 60, 40), (240, 240, 240), (40, 90, 160)), 10, 6),
    "train": (((215, 205, 60), (220, 30, 30), (235, 235, 235)), 10, 6),
    "motorcycle": (((40, 40, 45), (150, 25, 25), (30, 60, 140)), 10, 6),
    "bicycle": (((60, 60, 70), (30, 30, 30), (140, 30, 30)), 12, 8),
    "license plate": (((230, 230, 225),), 5, 4),
    "ego vehicle": (((25, 25, 30), (60, 60, 65), (200, 200, 205)), 8, 4),
    "rectification border": (((5, 5, 5),), 2, 2),
    "out of roi": (((10, 10, 10),), 3, 2),
    "bark": (((80, 60, 45), (60, 50, 40)), 10, 10),
    "window": (((60, 70, 85), (80, 90, 100), (40, 45, 55), (180, 190, 200)), 12, 6),
    "marking": (((225, 225, 215),), 6, 6),
    "tyre": (((20, 20, 22),), 4, 4),
    "glass": (((40, 50, 60), (70, 80, 95)), 8, 5),
    "vehicle light": (((200, 30, 30), (230, 220, 200)), 10, 4),
    "skin": (((220, 180, 150), (160, 110, 80), (110, 75, 55)), 12, 4),
    "lamp": (((230, 40, 30), (240, 200, 40), (60, 220, 80)), 10, 3),
    "steel": (((170, 170, 175),), 8, 4),
    "shade": (((50, 50, 55),), 10, 6),
}


def sample_colour(rng: np.random.Generator, kind: str) -> Tuple[Rgb, float]:
    """A random object colour of ``kind``: (RGB mean in 0..255, per-pixel grain)."""
    means, spread, grain = KIND_COLOURS[kind]
    mean = np.asarray(means[int(rng.integers(len(means)))], dtype=np.float64)
    colour = np.clip(mean + rng.normal(0.0, spread, size=3), 0.0, 255.0)
    return (float(colour[0]), float(colour[1]), float(colour[2])), float(grain)
