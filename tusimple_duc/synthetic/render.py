"""Rendering of the synthetic scenes: the photograph from all layers, label maps from the annotated ones.

The photograph: each layer's colour, a blotchy low-frequency shading and per-pixel Gaussian grain
scaled by the layer's grain, sensor noise, an exposure and illumination gradient, and a random
Gaussian blur. The label maps follow ``cityscapesscripts`` (``json2labelImg``, ``json2instanceImg``):
objects painted in order on "unlabeled" (0), ids < 0 (licence plates) skipped, and for classes with
instances the value ``id * 1000 + k`` where ``k`` counts the earlier objects of that class.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from tusimple_duc.data.labels import CITYSCAPES_LABELS
from tusimple_duc.synthetic.street_objects import Layer
from tusimple_duc.synthetic.street_layout import SceneStyle, layout_street_scene

#: An annotated object: (official Cityscapes label name, int32 (K, 2) pixel polygon (x, y)).
AnnotatedObject = Tuple[str, np.ndarray]

#: How many layouts :func:`render_street_scene` tries to show every required label.
LAYOUT_ATTEMPTS = 12

_ID_BY_NAME = {label.name: label.id for label in CITYSCAPES_LABELS}
_INSTANCE_CLASSES = frozenset(label.name for label in CITYSCAPES_LABELS if label.has_instances)


@dataclass(frozen=True)
class Annotation:
    """Label maps of one image, each (H, W).

    ``label_ids`` uint8 official labelIds; ``instance_ids`` uint16 (``id*1000+k`` for instance
    classes, else the labelId); ``object_index`` int32, index of the object that set the pixel, -1
    where none did.
    """

    label_ids: np.ndarray
    instance_ids: np.ndarray
    object_index: np.ndarray


@dataclass(frozen=True)
class RenderedScene:
    """A street scene: ``image`` (H, W, 3) uint8 RGB, its objects in JSON order, its label maps,
    and the pixel polygon of the ego lane (or None)."""

    image: np.ndarray
    objects: List[AnnotatedObject]
    annotation: Annotation
    ego_lane: Optional[np.ndarray]


def rasterize_annotation(objects: Sequence[AnnotatedObject], image_size: Tuple[int, int]) -> Annotation:
    """Label maps (H, W) of ``objects`` painted in order, as ``cityscapesscripts`` rasterises polygons."""
    label_ids = np.zeros(image_size, dtype=np.uint8)
    instance_ids = np.zeros(image_size, dtype=np.uint16)
    object_index = np.full(image_size, -1, dtype=np.int32)
    seen = {name: 0 for name in _INSTANCE_CLASSES}
    for index, (name, polygon) in enumerate(objects):
        label_id = _ID_BY_NAME[name]
        if label_id < 0:
            continue
        value = label_id
        if name in _INSTANCE_CLASSES:
            value = label_id * 1000 + seen[name]
            seen[name] += 1
        cv2.fillPoly(label_ids, [polygon], label_id)
        cv2.fillPoly(instance_ids, [polygon], value)
        cv2.fillPoly(object_index, [polygon], index)
    return Annotation(label_ids, instance_ids, object_index)


def paint_image(layers: Sequence[Layer], image_size: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """The photograph (H, W, 3) uint8 RGB of ``layers`` painted in order, textured and noisy."""
    height, width = image_size
    owner = np.full(image_size, len(layers), dtype=np.int32)
    for index, layer in enumerate(layers):
        cv2.fillPoly(owner, list(layer.polygons), index)
    colours = np.array([layer.color for layer in layers] + [(128.0, 128.0, 128.0)], dtype=np.float32)
    grains = np.array([layer.grain for layer in layers] + [5.0], dtype=np.float32)
    grain = grains[owner]
    blotches = rng.standard_normal((height // 16 + 2, width // 16 + 2), dtype=np.float32)
    shading = cv2.resize(blotches, (width, height), interpolation=cv2.INTER_CUBIC) * (0.6 * grain)
    sensor = rng.uniform(2.0, 6.0)
    noise = rng.standard_normal((height, width, 3), dtype=np.float32)
    noise *= (0.8 * grain + sensor)[..., None]
    image = colours[owner] + shading[..., None] + noise
    gain_x = rng.uniform(-0.35, 0.35) * (np.arange(width, dtype=np.float32) / width - 0.5)
    gain_y = rng.uniform(-0.35, 0.35) * (np.arange(height, dtype=np.float32) / height - 0.5)
    image *= (rng.uniform(0.75, 1.2) * (1.0 + gain_y[:, None] + gain_x[None, :]))[..., None]
    sigma = rng.uniform(0.0, 1.0) * np.sqrt(width / 512.0)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    return np.clip(image + 0.5, 0.0, 255.0).astype(np.uint8)


def render_street_scene(rng: np.random.Generator, image_size: Tuple[int, int], style: SceneStyle,
                        force: FrozenSet[str] = frozenset(),
                        required: FrozenSet[str] = frozenset()) -> RenderedScene:
    """Lay out, annotate and paint one street scene of ``image_size`` (H, W).

    ``style`` and ``force``: see :func:`~tusimple_duc.synthetic.street_layout.layout_street_scene`.
    Layouts in which a label of ``required`` is not visible (fully occluded or off-image) are
    drawn again, up to ``LAYOUT_ATTEMPTS`` times (the last one is kept); all from ``rng``.
    """
    required_ids = [_ID_BY_NAME[name] for name in required]
    for _ in range(LAYOUT_ATTEMPTS):
        scene = layout_street_scene(rng, image_size, style, force)
        objects = [(layer.label, layer.polygons[0]) for layer in scene.layers if layer.label is not None]
        annotation = rasterize_annotation(objects, image_size)
        visible = np.bincount(annotation.label_ids.ravel(), minlength=256)
        if all(visible[label_id] for label_id in required_ids):
            break
    image = paint_image(scene.layers, image_size, rng)
    return RenderedScene(image, objects, annotation, scene.ego_lane)
