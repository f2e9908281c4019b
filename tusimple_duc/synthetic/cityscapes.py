"""A small synthetic Cityscapes in the exact file layout of the real release.

``write_synthetic_cityscapes(root)`` writes, per image::

    leftImg8bit/{split}/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png    8-bit RGB
    gtFine/{split}/{city}/{...}_gtFine_labelIds.png      8-bit grey, official labelIds
    gtFine/{split}/{city}/{...}_gtFine_instanceIds.png   16-bit grey, id*1000+k for instance classes
    gtFine/{split}/{city}/{...}_gtFine_color.png         8-bit RGBA (alpha 255), official colours
    gtFine/{split}/{city}/{...}_gtFine_polygons.json     {"imgHeight", "imgWidth", "objects": [{"label", "polygon"}]}

and with ``coarse=True`` the same four ``gtCoarse/{train,val,train_extra}/..._gtCoarse_*`` files
(``train_extra`` has images and coarse annotations only, as in the release). Scenes are drawn by
:mod:`tusimple_duc.synthetic.render`. The fine polygons are exactly the painted shapes (the
label PNGs are the polygons rasterised in order, as ``cityscapesscripts`` does, up to the fill rule
at polygon edges). Coarse annotations are the fine ones eroded per object, with a quarter of the
objects dropped (more "unlabeled" 0, no thin objects, as real coarse data); their polygons are
simplified outlines of the eroded regions, so the coarse PNGs, not the coarse polygons, are exact.
The test split, as in the release, only annotates ego vehicle, rectification border and out of roi.
Colour PNGs are RGBA like the released ``*_color.png`` files.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import cv2
import numpy as np

from tusimple_duc.data.labels import (
    CITYSCAPES_ID_PALETTE, CITYSCAPES_ID_TO_TRAINID, CITYSCAPES_NUM_CLASSES, CITYSCAPES_VALID_IDS,
)
from tusimple_duc.synthetic.render import (
    AnnotatedObject, Annotation, rasterize_annotation, render_street_scene,
)
from tusimple_duc.synthetic.street_layout import CITYSCAPES_STYLE, COMMON_LABELS, RARE_KINDS, labels_of_kinds
from tusimple_duc.errors import ConfigError, DataError
from tusimple_duc.io.atomic import atomic_write_image, atomic_write_json

#: Cities of the real release, per split, in alphabetical order.
CITYSCAPES_CITIES: Dict[str, Tuple[str, ...]] = {
    "train": ("aachen", "bochum", "bremen", "cologne", "darmstadt", "dusseldorf", "erfurt", "hamburg",
              "hanover", "jena", "krefeld", "monchengladbach", "strasbourg", "stuttgart", "tubingen",
              "ulm", "weimar", "zurich"),
    "val": ("frankfurt", "lindau", "munster"),
    "test": ("berlin", "bielefeld", "bonn", "leverkusen", "mainz", "munich"),
    "train_extra": ("augsburg", "bad-honnef", "bamberg", "bayreuth", "dortmund", "dresden", "duisburg",
                    "erlangen", "freiburg", "heidelberg", "heilbronn", "karlsruhe", "konigswinter",
                    "konstanz", "mannheim", "muhlheim-ruhr", "nuremberg", "oberhausen", "saarbrucken",
                    "schweinfurt", "troisdorf", "wuppertal", "wurzburg"),
}
#: The annotated frame of each 30-frame snippet (``*_000019_*`` in the release).
FRAME_NUMBER = 19
#: Labels annotated in the release's test split (dummy annotations).
TEST_SPLIT_LABELS = ("ego vehicle", "rectification border", "out of roi")
#: Number of labelIds (0..33) counted in :attr:`SyntheticSummary.label_id_pixel_counts`.
NUM_LABEL_IDS = max(CITYSCAPES_VALID_IDS) + 1
#: Fraction of objects a coarse annotation leaves out.
COARSE_DROP_PROBABILITY = 0.25

_SPLIT_CODES = {"train": 0, "val": 1, "test": 2, "train_extra": 3}
_ANNOTATION_PARTS = ("labelIds", "instanceIds", "color", "polygons")
_SUFFIXES = ("leftImg8bit",) + tuple(f"{kind}_{part}" for kind in ("gtFine", "gtCoarse") for part in _ANNOTATION_PARTS)
_CITY_NAME = re.compile(r"^[a-z][a-z-]*$")


@dataclass(frozen=True)
class SyntheticFrame:
    """One written image: ``files`` maps a suffix (``leftImg8bit``, ``gtFine_labelIds``,
    ``gtFine_instanceIds``, ``gtFine_color``, ``gtFine_polygons``, ``gtCoarse_...``) to its path."""

    split: str
    city: str
    sequence: int
    frame: int
    files: Dict[str, str]

    @property
    def name(self) -> str:
        """``{city}_{sequence:06d}_{frame:06d}``, the key the official evaluator matches on."""
        return f"{self.city}_{self.sequence:06d}_{self.frame:06d}"

    @property
    def image(self) -> str:
        return self.files["leftImg8bit"]


@dataclass(frozen=True)
class SyntheticSummary:
    """What :func:`write_synthetic_cityscapes` wrote.

    ``frames[split]``: the images in writing order; ``label_id_pixel_counts[split]``: int64
    (NUM_LABEL_IDS,) pixels per labelId over the split's labelIds PNGs (gtFine; gtCoarse for
    ``train_extra``).
    """

    root: str
    frames: Dict[str, List[SyntheticFrame]]
    label_id_pixel_counts: Dict[str, np.ndarray]

    def files(self, split: str) -> List[str]:
        """Every file written for ``split``, sorted."""
        return sorted(path for frame in self.frames[split] for path in frame.files.values())

    def train_id_pixel_counts(self, split: str) -> np.ndarray:
        """int64 (19,) pixels per trainId over ``split``."""
        counts = np.zeros(CITYSCAPES_NUM_CLASSES, dtype=np.int64)
        train_ids = CITYSCAPES_ID_TO_TRAINID[:NUM_LABEL_IDS]
        evaluated = train_ids < CITYSCAPES_NUM_CLASSES
        np.add.at(counts, train_ids[evaluated], self.label_id_pixel_counts[split][evaluated])
        return counts


def cityscapes_path(root: str, split: str, city: str, sequence: int, frame: int, suffix: str) -> str:
    """Path of a release file: ``suffix`` like ``leftImg8bit`` or ``gtFine_labelIds`` (folder = its first part)."""
    extension = "json" if suffix.endswith("polygons") else "png"
    name = f"{city}_{sequence:06d}_{frame:06d}_{suffix}.{extension}"
    return os.path.join(root, suffix.split("_")[0], split, city, name)


def check_count(name: str, count: object) -> None:
    """Raise ConfigError unless ``count`` (an image count called ``name``) is an int >= 0."""
    if not isinstance(count, int) or count < 0:
        raise ConfigError(f"{name}: {count!r} is not a non-negative integer")


def check_image_size(image_size: Sequence[int]) -> None:
    """Raise ConfigError unless ``image_size`` is (height, width), two ints >= 16."""
    if len(image_size) != 2 or any(not isinstance(v, int) or v < 16 for v in image_size):
        raise ConfigError(f"image_size: {tuple(image_size)} is not two integers >= 16 (height, width)")


def _check_arguments(splits: Mapping[str, int], image_size: Tuple[int, int],
                     cities: Optional[Sequence[str]], coarse: bool) -> None:
    for split, count in splits.items():
        if split not in _SPLIT_CODES:
            raise ConfigError(f"splits: unknown split {split!r} (expected one of {', '.join(_SPLIT_CODES)})")
        check_count(f"splits[{split!r}]", count)
    if "train_extra" in splits and not coarse:
        raise ConfigError("splits: train_extra has only coarse annotations; it needs coarse=True")
    check_image_size(image_size)
    for city in cities or ():
        if not _CITY_NAME.match(city):
            raise ConfigError(f"cities: {city!r} is not a city name (lower-case letters and '-')")


def _split_cities(split: str, count: int, cities: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """The cities of a split: the given ones, else the first ceil(count/2) real ones."""
    if cities:
        return tuple(cities)
    real = CITYSCAPES_CITIES[split]
    return real[:max(1, min(len(real), math.ceil(count / 2)))]


def write_image(path: str, array: np.ndarray) -> None:
    """Write ``array`` (OpenCV channel order) atomically, as PNG or JPEG by ``path``'s extension."""
    try:
        atomic_write_image(path, array)
    except OSError as error:
        raise DataError(str(error)) from None


def _write_annotation(files: Dict[str, str], paths: Dict[str, str], kind: str,
                      objects: Sequence[AnnotatedObject], annotation: Annotation) -> None:
    """The four ``{kind}_*`` files (kind ``gtFine`` or ``gtCoarse``) of one image."""
    height, width = annotation.label_ids.shape
    for suffix in _ANNOTATION_PARTS:
        files[f"{kind}_{suffix}"] = paths[f"{kind}_{suffix}"]
    write_image(files[f"{kind}_labelIds"], annotation.label_ids)
    write_image(files[f"{kind}_instanceIds"], annotation.instance_ids)
    rgba = np.dstack([CITYSCAPES_ID_PALETTE[annotation.label_ids], np.full((height, width), 255, np.uint8)])
    write_image(files[f"{kind}_color"], cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    atomic_write_json(files[f"{kind}_polygons"], {
        "imgHeight": height, "imgWidth": width,
        "objects": [{"label": name, "polygon": polygon.tolist()} for name, polygon in objects],
    })


def coarsen_annotation(objects: Sequence[AnnotatedObject], annotation: Annotation,
                       rng: np.random.Generator) -> Tuple[List[AnnotatedObject], Annotation]:
    """A coarse annotation from a fine one: each object eroded, some dropped, outlines simplified.

    Erosion radius ``max(2, W // 256)`` px (8 px at 2048 wide); objects dropped with
    :data:`COARSE_DROP_PROBABILITY`. Returns the simplified polygons (objects in the same order)
    and the label maps of the eroded regions (which the polygons only approximate).
    """
    height, width = annotation.label_ids.shape
    radius = max(2, width // 256)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    owner = annotation.object_index.astype(np.float32)
    interior = cv2.erode(owner, kernel) == cv2.dilate(owner, kernel)
    kept = np.append(rng.random(len(objects)) >= COARSE_DROP_PROBABILITY, False)  # [-1]: no object
    coarse = interior & kept[annotation.object_index]
    coarse_objects: List[AnnotatedObject] = []
    for index, (name, polygon) in enumerate(objects):
        (x0, y0), (x1, y1) = polygon.min(axis=0), polygon.max(axis=0)
        mask = coarse[y0:y1 + 1, x0:x1 + 1] & (annotation.object_index[y0:y1 + 1, x0:x1 + 1] == index)
        if not kept[index] or not mask.any():
            continue
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in contours:
            outline = cv2.approxPolyDP(contour, radius / 2, True)[:, 0, :] + [x0, y0]
            if len(outline) >= 3:
                coarse_objects.append((name, outline.astype(np.int32)))
    label_ids = np.where(coarse, annotation.label_ids, 0).astype(np.uint8)
    instance_ids = np.where(coarse, annotation.instance_ids, 0).astype(np.uint16)
    return coarse_objects, Annotation(label_ids, instance_ids, np.where(coarse, annotation.object_index, -1))


def write_synthetic_cityscapes(root: str, splits: Mapping[str, int] = {"train": 4, "val": 2},
                               image_size: Tuple[int, int] = (256, 512), seed: int = 0,
                               cities: Optional[Sequence[str]] = None, coarse: bool = False) -> SyntheticSummary:
    """Write a synthetic Cityscapes under ``root`` (layout: module docstring) and summarise it.

    ``splits``: images per split (train, val, test, train_extra); with ``coarse`` and no
    ``train_extra`` entry, as many train_extra images as train images are written.
    ``image_size``: (H, W) px, any size from 16 (the release: 1024x2048). ``cities``: city names for
    every split (default: the first ceil(n/2) real cities of each split; images go round-robin over
    cities, the sequence number counting per city). Image ``i`` of a split is drawn from
    ``np.random.default_rng([seed, split_code, i])`` and forced to show every other rare kind
    (:data:`~tusimple_duc.synthetic.street_layout.RARE_KINDS`), so any two consecutive images of a
    split show all 19 evaluated classes. Same arguments, byte-identical files.
    """
    _check_arguments(splits, image_size, cities, coarse)
    root = os.path.abspath(root)
    counts = dict(splits)
    if coarse and "train_extra" not in counts:
        counts["train_extra"] = counts.get("train", 0)
    frames: Dict[str, List[SyntheticFrame]] = {}
    pixel_counts: Dict[str, np.ndarray] = {}
    for split, count in counts.items():
        frames[split], pixel_counts[split] = [], np.zeros(NUM_LABEL_IDS, dtype=np.int64)
        split_cities = _split_cities(split, count, cities)
        for index in range(count):
            city, sequence = split_cities[index % len(split_cities)], index // len(split_cities)
            paths = {suffix: cityscapes_path(root, split, city, sequence, FRAME_NUMBER, suffix)
                     for suffix in _SUFFIXES}
            rng = np.random.default_rng([seed, _SPLIT_CODES[split], index])
            force = frozenset(RARE_KINDS[index % 2::2])
            scene = render_street_scene(rng, image_size, CITYSCAPES_STYLE, force,
                                        COMMON_LABELS | labels_of_kinds(force))
            files = {"leftImg8bit": paths["leftImg8bit"]}
            write_image(files["leftImg8bit"], cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
            counted: Optional[Annotation] = None
            if split != "train_extra":
                objects, annotation = scene.objects, scene.annotation
                if split == "test":
                    objects = [obj for obj in objects if obj[0] in TEST_SPLIT_LABELS]
                    annotation = rasterize_annotation(objects, image_size)
                _write_annotation(files, paths, "gtFine", objects, annotation)
                counted = annotation
            if coarse and split != "test":
                coarse_objects, coarse_annotation = coarsen_annotation(scene.objects, scene.annotation, rng)
                _write_annotation(files, paths, "gtCoarse", coarse_objects, coarse_annotation)
                if counted is None:
                    counted = coarse_annotation
            pixel_counts[split] += np.bincount(counted.label_ids.ravel(), minlength=NUM_LABEL_IDS)[:NUM_LABEL_IDS]
            frames[split].append(SyntheticFrame(split, city, sequence, FRAME_NUMBER, files))
    return SyntheticSummary(root, frames, pixel_counts)
