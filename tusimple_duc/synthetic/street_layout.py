"""Procedural street scenes: which shapes are where, in painting order (far to near).

A scene is a list of :class:`Layer` polygons in pixel coordinates. Annotated layers carry an
official Cityscapes label name and become, in the same order, the objects of a
``*_gtFine_polygons.json`` file, so the label maps rasterised from them match the JSON exactly (up
to the polygon fill rule). Image-only layers (windows, lane markings, tyres, ...) only colour the
photograph. The street: sky, a row of buildings across the far end, a road with a vanishing point,
lane markings and optional tram rails, on each side either an urban strip (parking, sidewalk,
grass, facades with windows, walls, fences) or a green strip (guard rail, terrain, hedges, fences,
distant facades); then poles with traffic lights and signs, trees, persons, street furniture,
cars, trucks, buses, trams, motorcycles and bicycles with riders; then the ego-vehicle hood and the
image borders. Thin objects (poles, traffic lights, traffic signs) have pixel widths from
:func:`~tusimple_duc.synthetic.camera.thin_width`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, List, Optional, Tuple

import numpy as np

from tusimple_duc.synthetic.camera import Camera, ground_quad, side_face, world_polygon
from tusimple_duc.synthetic.street_objects import (
    LANE_WIDTH, Layer, SceneBuilder, Side, overlay_layers, place_street_objects,
)

#: Optional content, each drawn with probability ``SceneStyle.rare_probability`` unless forced.
RARE_KINDS: Tuple[str, ...] = (
    "wall", "motorcycle", "fence", "bicycle", "truck", "bus", "train", "parking", "rail track",
    "guard rail", "ground", "static", "polegroup",
)

#: Labels that the rare kinds bring (when not simply the kind itself).
_KIND_LABELS = {"motorcycle": ("motorcycle", "rider"), "bicycle": ("bicycle", "rider"),
                "train": ("train", "rail track")}
#: Labels a Cityscapes-style scene always shows (sidewalk and terrain: with ``min_urban_sides`` 1).
COMMON_LABELS: FrozenSet[str] = frozenset({
    "road", "sidewalk", "building", "vegetation", "terrain", "sky", "pole", "traffic light",
    "traffic sign", "person", "car",
})


def labels_of_kinds(kinds: FrozenSet[str]) -> FrozenSet[str]:
    """Cityscapes label names that the rare ``kinds`` (names from :data:`RARE_KINDS`) put in a scene."""
    return frozenset(label for kind in kinds for label in _KIND_LABELS.get(kind, (kind,)))


@dataclass(frozen=True)
class SceneStyle:
    """Camera and street parameters of one dataset's look.

    ``focal_x``/``focal_y``: focal lengths in image widths/heights; ``camera_height`` in m;
    ``horizon``: range of the horizon row in image heights; ``road_half_width``: range (m) of the
    road's extent on each side of the camera; ``min_urban_sides``: sides forced urban;
    ``ego_vehicle``: draw the ego hood, rectification border and out-of-roi strips.
    """

    focal_x: float
    focal_y: float
    camera_height: float
    horizon: Tuple[float, float]
    road_half_width: Tuple[float, float]
    lane_markings: bool
    urban_probability: float
    min_urban_sides: int
    rare_probability: float
    ego_vehicle: bool


#: Cityscapes: 2262 px focal length at 1024x2048, camera 1.22 m above the road.
CITYSCAPES_STYLE = SceneStyle(2262 / 2048, 2262 / 1024, 1.22, (0.38, 0.46), (3.5, 9.0),
                              True, 0.75, 1, 0.5, True)


@dataclass(frozen=True)
class StreetScene:
    """Layers in painting order, the camera, and the pixel polygon of the ego lane (or None)."""

    layers: List[Layer]
    camera: Camera
    ego_lane: Optional[np.ndarray]


def _sides(rng: np.random.Generator, style: SceneStyle, rare: FrozenSet[str],
           left: float, right: float) -> List[Side]:
    """Left and right side of a road from ``left`` to ``right`` (m): urban or green, their strips."""
    urban = [bool(rng.random() < style.urban_probability) for _ in range(2)]
    for index in range(min(style.min_urban_sides, 2)):
        if sum(urban) < style.min_urban_sides:
            urban[index] = True
    if "guard rail" in rare and all(urban) and style.min_urban_sides < 2:
        urban[int(rng.integers(2))] = False
    parking_side = [i for i in range(2) if urban[i]]
    parking = int(rng.choice(parking_side)) if "parking" in rare and parking_side else -1
    grass = [bool(rng.random() < 0.5) for _ in range(2)]
    if all(urban) and not any(grass):
        grass[1] = True
    sides = []
    for index, (sign, edge) in enumerate(((-1, -left), (1, right))):
        if urban[index]:
            start = edge + (2.4 if parking == index else 0.0)
            walk = (start, start + rng.uniform(2.5, 5.0))
            facade = walk[1] + (1.5 if grass[index] else 0.0)
        else:
            walk = (edge + 0.8, edge + rng.uniform(4.0, 9.0))
            facade = edge + rng.uniform(14.0, 30.0) if rng.random() < 0.6 else None
        sides.append(Side(sign, urban[index], edge, walk, facade, parking == index))
    return sides


def _ground(b: SceneBuilder, sides: List[Side], left: float, right: float,
            rare: FrozenSet[str], markings: bool) -> Optional[float]:
    """Road, rails, markings and the ground strips of both sides; returns the rail lane centre."""
    z0, z1 = b.camera.z_near, b.z_end
    b.background += b.world("road", ground_quad(left, right, z0, z1))
    rail = None
    if rare & {"rail track", "train"}:
        rail = left + 0.5 * LANE_WIDTH
        b.background += b.world("rail track", ground_quad(rail - 1.0, rail + 1.0, z0, z1))
        b.background += b.make("steel", [world_polygon(b.camera, ground_quad(x, x + 0.08, z0, z1))
                                         for x in (rail - 0.76, rail + 0.68)], False)
    if markings:
        boundaries = [(k + 0.5) * LANE_WIDTH for k in range(-8, 8) if left + 0.5 < (k + 0.5) * LANE_WIDTH < right - 0.5]
        dashes = [world_polygon(b.camera, ground_quad(x - 0.07, x + 0.07, z, z + 3.0))
                  for x in boundaries for z in np.arange(z0 - b.rng.uniform(0.0, 9.0), z1, 9.0)]
        edges = [world_polygon(b.camera, ground_quad(x - 0.06, x + 0.06, z0, z1)) for x in (left + 0.3, right - 0.3)]
        b.background += b.make("road", dashes + edges, False, "marking")
    for side in sides:
        s = side.sign
        if side.parking:
            b.background += b.world("parking", ground_quad(*sorted((s * side.edge, s * side.walk[0])), z0, z1))
        if side.urban:
            b.background += b.world("sidewalk", ground_quad(*sorted((s * side.walk[0], s * side.walk[1])), z0, z1))
            if side.facade is not None and side.facade > side.walk[1]:
                b.background += b.world("terrain", ground_quad(*sorted((s * side.walk[1], s * side.facade)), z0, z1))
        else:
            b.background += b.world("terrain", ground_quad(*sorted((s * side.edge, s * 300.0)), z0, z1))
        if "ground" in rare and side is sides[-1]:
            far = side.walk[1] if side.urban else side.walk[0] + 3.0
            za = b.rng.uniform(1.0, 1.5) * b.visible_from(far)
            b.background += b.world("ground", ground_quad(*sorted((s * side.walk[0], s * far)),
                                                          za, za + b.rng.uniform(3.0, 8.0)))
    return rail


def _facades(b: SceneBuilder, sides: List[Side]) -> None:
    """Buildings across the far end and along each side, with windows."""
    cam, rng = b.camera, b.rng
    x = -120.0
    while x < 120.0:
        width, height = rng.uniform(8.0, 22.0), rng.uniform(6.0, 26.0)
        b.background += b.world("building", np.array([[x, 0, b.z_end], [x + width, 0, b.z_end],
                                                      [x + width, height, b.z_end], [x, height, b.z_end]]))
        x += width
    for side in sides:
        if side.facade is None:
            continue
        xf = side.sign * side.facade
        z = cam.z_near - rng.uniform(0.0, 8.0)
        while z < b.z_end:
            length, height = rng.uniform(8.0, 25.0), rng.uniform(7.0, 24.0)
            b.background += b.world("building", side_face(xf, 0.0, height, z, z + length))
            pitch, floor = rng.uniform(2.6, 3.6), rng.uniform(3.0, 3.6)
            windows = [world_polygon(cam, side_face(xf, y, y + 1.5, w, w + 1.2))
                       for y in np.arange(1.0, height - 1.6, floor)
                       for w in np.arange(z + 0.8, z + length - 1.3, pitch) if w > cam.z_near]
            b.background += b.make("building", windows, False, "window")
            z += length


def _low_structures(b: SceneBuilder, sides: List[Side], rare: FrozenSet[str]) -> None:
    """Walls, fences, hedges and guard rails in front of the facades, far side first."""
    rng = b.rng
    wall_side, fence_side = (int(rng.integers(2)) for _ in range(2))
    for index, side in enumerate(sides):
        s, items = side.sign, []
        outer = side.facade if side.urban else side.walk[1] + rng.uniform(0.5, 3.0)
        if "wall" in rare and index == wall_side:
            items.append(("wall", outer - 0.3, 0.0, rng.uniform(1.0, 2.5)))
        if "fence" in rare and index == fence_side:
            items.append(("fence", outer - 0.9, 0.0, rng.uniform(1.0, 2.0)))
        if not side.urban and not items and rng.random() < 0.5:
            items.append(("vegetation", side.walk[0] + rng.uniform(1.5, 3.0), 0.0, rng.uniform(1.0, 2.2)))
        if not side.urban and "guard rail" in rare:
            items.append(("guard rail", side.edge + 0.4, 0.35, 0.8))
        for kind, distance, y0, y1 in sorted(items, key=lambda item: -item[1]):
            za = rng.uniform(1.0, 1.5) * b.visible_from(distance)
            zb = za + rng.uniform(10.0, 40.0)
            b.background += b.world(kind, side_face(s * distance, y0, y1, za, zb))
            if kind == "fence":
                posts = [world_polygon(b.camera, side_face(s * distance, y0, y1, z, z + 0.15))
                         for z in np.arange(za, zb - 0.15, 2.0)]
                b.background += b.make(kind, posts, False, "shade")


def layout_street_scene(rng: np.random.Generator, image_size: Tuple[int, int], style: SceneStyle,
                        force: FrozenSet[str] = frozenset()) -> StreetScene:
    """Draw a random street scene of ``image_size`` (H, W) in ``style``; kinds in ``force`` appear.

    ``force`` holds names from :data:`RARE_KINDS`; the others appear with
    ``style.rare_probability``. Everything is decided by ``rng``, so a seeded generator gives the
    same scene every time.
    """
    height, width = image_size
    camera = Camera(width, height, style.focal_x * width, style.focal_y * height,
                    width * rng.uniform(0.47, 0.53), height * rng.uniform(*style.horizon),
                    style.camera_height)
    rare = frozenset(k for k in RARE_KINDS if rng.random() < style.rare_probability) | force
    left, right = -rng.uniform(*style.road_half_width), rng.uniform(*style.road_half_width)
    b = SceneBuilder(rng, camera, rng.uniform(60.0, 140.0))
    sides = _sides(rng, style, rare, left, right)
    b.background += b.make("sky", [b.rect(0, width - 1, 0, camera.horizon + 1)], True)
    rail = _ground(b, sides, left, right, rare, style.lane_markings)
    _facades(b, sides)
    _low_structures(b, sides, rare)
    place_street_objects(b, sides, left, right, rail, rare)
    layers = b.layers()
    if style.ego_vehicle:
        layers += overlay_layers(b)
    ego_lane = world_polygon(camera, ground_quad(-0.5 * LANE_WIDTH, 0.5 * LANE_WIDTH, camera.z_near, b.z_end))
    return StreetScene(layers, camera, ego_lane)
