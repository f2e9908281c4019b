"""Things in the synthetic street scenes: layers, the scene builder, and the objects on the street.

Poles (with traffic lights and signs, all thin: pixel widths from
:func:`~tusimple_duc.synthetic.camera.thin_width`), trees, persons, street furniture and
vehicles (cars with licence plates, trucks, buses, trams on rails, motorcycles and bicycles with
riders), then the ego-vehicle hood and the image borders. Each object is a group of layers painted
together; groups are painted far to near.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Optional, Tuple

import numpy as np

from tusimple_duc.synthetic.camera import (
    Camera, box_corners, ellipse_points, front_face, hull_polygon, pixel_polygon, side_face,
    smooth_jitter, thin_width, world_polygon,
)
from tusimple_duc.synthetic.colours import Rgb, sample_colour

LANE_WIDTH = 3.4

# A standing person facing the camera: (x, y) with y up, in units of the body height; x is
# scaled by 0.55 and the feet by a random stride. Legs, arms, head; the last six points are the head.
_FIGURE = np.array([
    [-0.20, 0.0], [-0.08, 0.0], [0.0, 0.45], [0.08, 0.0], [0.20, 0.0], [0.17, 0.47], [0.26, 0.42],
    [0.24, 0.80], [0.07, 0.83], [0.10, 0.90], [0.06, 0.99], [-0.06, 0.99], [-0.10, 0.90],
    [-0.07, 0.83], [-0.24, 0.80], [-0.26, 0.42], [-0.17, 0.47],
])
_HEAD = slice(8, 14)
_LEGS = [0, 1, 2, 3, 4, 5, 16]


@dataclass(frozen=True)
class Layer:
    """One painted shape: ``polygons`` int32 (K, 2) pixel ``(x, y)``; ``label`` when annotated."""

    polygons: Tuple[np.ndarray, ...]
    color: Rgb
    grain: float
    label: Optional[str] = None


@dataclass(frozen=True)
class Side:
    """One side of the street: ``sign`` -1 left / +1 right; distances (m) from the camera axis.

    ``walk``: the strip where people, poles and trees stand; ``facade``: distance of the
    building fronts (None: no buildings); ``parking``: a parking strip along the road edge.
    """

    sign: int
    urban: bool
    edge: float
    walk: Tuple[float, float]
    facade: Optional[float]
    parking: bool


class SceneBuilder:
    """Collects layers: the background in painting order, street objects as depth-tagged groups."""

    def __init__(self, rng: np.random.Generator, camera: Camera, z_end: float) -> None:
        self.rng, self.camera, self.z_end = rng, camera, z_end
        self.background: List[Layer] = []
        self.groups: List[Tuple[float, List[Layer]]] = []
        self.thin_spans: List[Tuple[int, int]] = []

    def make(self, kind: str, polygons: List[Optional[np.ndarray]], annotated: bool,
             colour_kind: Optional[str] = None) -> List[Layer]:
        """Layers of ``kind`` (one per polygon when annotated, else one image-only layer)."""
        kept = tuple(p for p in polygons if p is not None)
        if not kept:
            return []
        color, grain = sample_colour(self.rng, colour_kind or kind)
        if annotated:
            return [Layer((p,), color, grain, kind) for p in kept]
        return [Layer(kept, color, grain)]

    def world(self, kind: str, points_xyz: np.ndarray, annotated: bool = True,
              colour_kind: Optional[str] = None) -> List[Layer]:
        """Layers of one planar world polygon (N, 3)."""
        return self.make(kind, [world_polygon(self.camera, points_xyz)], annotated, colour_kind)

    def rect(self, x0: float, x1: float, y0: float, y1: float) -> Optional[np.ndarray]:
        """Pixel polygon of the rectangle of columns ``x0..x1`` and rows ``y0..y1`` (inclusive)."""
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
        return pixel_polygon(corners, self.camera.width, self.camera.height)

    def visible_from(self, distance: float) -> float:
        """Depth (m) from which a point ``distance`` m beside the camera axis is inside the image."""
        return max(self.camera.z_near + 1.0, self.camera.fx * abs(distance) / (0.45 * self.camera.width))

    def thin_slot(self, x0: int, x1: int) -> bool:
        """Reserve columns ``x0..x1`` for thin objects unless they come near reserved columns."""
        margin = max(3, self.camera.width // 100)
        if any(x0 <= b + margin and a <= x1 + margin for a, b in self.thin_spans):
            return False
        self.thin_spans.append((x0, x1))
        return True

    def layers(self) -> List[Layer]:
        """Background then groups, far to near."""
        ordered = sorted(self.groups, key=lambda group: -group[0])
        return self.background + [layer for _, group in ordered for layer in group]


def _figure(b: SceneBuilder, label: str, x: float, y0: float, z: float, height: float) -> List[Layer]:
    """A person (or rider, feet at ``y0`` m) facing the camera at ``(x, z)``: silhouette, legs, head."""
    shape = _FIGURE.copy()
    shape[[0, 1, 3, 4], 0] *= b.rng.uniform(0.6, 1.5)
    world = np.stack([x + 0.55 * height * shape[:, 0], y0 + height * shape[:, 1],
                      np.full(len(shape), z)], axis=1)
    layers = b.world(label, world)
    layers += b.world(label, world[_LEGS], annotated=False)
    layers += b.world(label, world[_HEAD], annotated=False, colour_kind="skin")
    return layers


def _bicycle(b: SceneBuilder, x: float, z: float, facing: int, rider: bool) -> List[Layer]:
    """A bicycle seen from the side at ``(x, z)`` (m), optionally with its rider."""
    radius, base = 0.34, 0.52
    wheels = [ellipse_points(x + dx, radius, radius, radius, 12) for dx in (-base, base)]
    frame = np.concatenate(wheels + [np.array([[x + facing * 0.42, 1.0], [x - facing * 0.2, 0.95]])])
    world = np.concatenate([frame, np.full((len(frame), 1), z)], axis=1)
    layers = b.make("bicycle", [hull_polygon(b.camera, world)], True)
    tyres = [world_polygon(b.camera, np.concatenate([w, np.full((12, 1), z)], axis=1)) for w in wheels]
    layers += b.make("bicycle", tyres, False, "tyre")
    if rider:
        layers += _figure(b, "rider", x, 0.45, z - 0.05, 1.35)
    return layers


def _vehicle(b: SceneBuilder, kind: str, xc: float, z0: float, size: Tuple[float, float, float]) -> List[Layer]:
    """A car, truck, bus or tram seen from behind: a box ``(width, height, length)`` m (cars: with a cabin)."""
    width, height, length = size
    corners = box_corners(xc - width / 2, xc + width / 2, 0.0, height, z0, z0 + length)
    if kind == "car":
        corners[[1, 3, 5, 7], 1] = 0.55 * height
        cabin = box_corners(xc - 0.42 * width, xc + 0.42 * width, 0.55 * height, height,
                            z0 + 0.25 * length, z0 + 0.75 * length)
        corners = np.concatenate([corners, cabin])
    layers = b.make(kind, [hull_polygon(b.camera, corners)], True)
    cam, half = b.camera, width / 2
    glass = []
    if kind == "car":
        glass.append(world_polygon(cam, front_face(xc - 0.38 * width, xc + 0.38 * width, 0.6 * height,
                                                   0.95 * height, z0 + 0.25 * length)))
    elif kind in ("bus", "train"):
        glass.append(world_polygon(cam, front_face(xc - half + 0.2, xc + half - 0.2, 1.6, 2.8, z0)))
        if abs(xc) > half:
            x_side = xc - half if xc > 0 else xc + half
            glass.append(world_polygon(cam, side_face(x_side, 1.5, 2.6, z0 + 1.0, z0 + length - 1.0)))
    layers += b.make(kind, glass, False, "glass")
    tyres = [world_polygon(cam, front_face(x, x + 0.3, 0.0, 0.35, z0)) for x in (xc - half + 0.05, xc + half - 0.35)]
    layers += b.make(kind, tyres, False, "tyre")
    lights = [world_polygon(cam, front_face(x, x + 0.25, 0.4 * height, 0.48 * height, z0))
              for x in (xc - half + 0.05, xc + half - 0.3)]
    layers += b.make(kind, lights, False, "vehicle light")
    if kind == "car":
        layers += b.world("license plate", front_face(xc - 0.26, xc + 0.26, 0.28, 0.4, z0))
    return layers


def _motorcycle(b: SceneBuilder, xc: float, z0: float) -> List[Layer]:
    """A motorcycle seen from behind (wheels, body, handlebar; 2 m long) with its rider."""
    parts = [box_corners(xc - 0.1, xc + 0.1, 0.0, 0.62, z0, z0 + 2.0),
             box_corners(xc - 0.33, xc + 0.33, 0.4, 0.95, z0 + 0.2, z0 + 1.7),
             box_corners(xc - 0.42, xc + 0.42, 0.95, 1.1, z0 + 1.4, z0 + 1.55)]
    layers = b.make("motorcycle", [hull_polygon(b.camera, np.concatenate(parts))], True)
    layers += b.world("motorcycle", front_face(xc - 0.1, xc + 0.1, 0.0, 0.62, z0), False, "tyre")
    layers += b.world("motorcycle", front_face(xc - 0.12, xc + 0.12, 0.75, 0.85, z0 + 0.2), False, "vehicle light")
    return layers + _figure(b, "rider", xc, 0.5, z0 + 0.7, 1.3)


def _poles(b: SceneBuilder, sides: List[Side], rare: FrozenSet[str]) -> None:
    """Poles along the kerb; the first two carry a traffic light and a sign; one polegroup if rare."""
    cam, rng = b.camera, b.rng
    wanted, placed = int(rng.integers(3, 8)), 0
    group_wanted = "polegroup" in rare
    for _ in range(60):
        if placed >= wanted and not group_wanted:
            break
        side = sides[int(rng.integers(2))]
        z = rng.uniform(8.0, min(60.0, b.z_end - 5.0))
        x_world = side.sign * (side.walk[0] + 0.4)
        u, bottom = cam.column(x_world, z), cam.ground_row(z)
        top = cam.project(np.array([[x_world, rng.uniform(3.5, 8.0), z]]))[0, 1]
        kind = "polegroup" if group_wanted and placed > 0 else "pole"
        width = thin_width(rng, cam.width) * (3 if kind == "polegroup" else 1)
        x0 = int(round(u - width / 2))
        x1 = x0 + width - 1
        light = placed < 2 or (kind == "pole" and rng.random() < 0.5)
        sign = placed < 2 or (kind == "pole" and rng.random() < 0.6)
        light_w, sign_w = thin_width(rng, cam.width), thin_width(rng, cam.width)
        toward = -side.sign
        light_x = (x1 + 1, x1 + light_w) if toward > 0 else (x0 - light_w, x0 - 1)
        sign_x = (x1 + 1, x1 + sign_w) if toward < 0 else (x0 - sign_w, x0 - 1)
        light_rows = (top, top + max(4, round(light_w * rng.uniform(2.2, 3.2))) - 1)
        sign_row = cam.project(np.array([[x_world, rng.uniform(2.0, 3.0), z]]))[0, 1]
        sign_rows = (sign_row, sign_row + max(2, round(sign_w * rng.uniform(1.0, 2.2))) - 1)
        span = (min(x0, light_x[0], sign_x[0]), max(x1, light_x[1], sign_x[1]))
        if span[0] < 1 or span[1] > cam.width - 2 or top < 1 or sign_rows[1] >= bottom:
            continue
        if not b.thin_slot(*span):
            continue
        layers = b.make(kind, [b.rect(x0, x1, top, bottom)], True)
        if light:
            layers += b.make("traffic light", [b.rect(light_x[0], light_x[1], *light_rows)], True)
            lamp = max(1, light_w // 2)
            layers += b.make("traffic light", [b.rect(light_x[0], light_x[1], top + 1, top + lamp)], False, "lamp")
        if sign:
            layers += b.make("traffic sign", [b.rect(sign_x[0], sign_x[1], *sign_rows)], True)
        b.groups.append((z, layers))
        placed += 1
        group_wanted = group_wanted and kind != "polegroup"


def _trees(b: SceneBuilder, sides: List[Side]) -> None:
    """Trees: a trunk and a ragged crown, both vegetation; at least one per scene."""
    rng, spots = b.rng, []
    for side in sides:
        count = int(rng.integers(0, 4)) if side.urban else int(rng.integers(2, 7))
        for _ in range(count):
            offset = side.walk[1] - 0.8 if side.urban else rng.uniform(side.walk[0] + 2.0, side.walk[0] + 12.0)
            spots.append((side.sign * offset, rng.uniform(7.0, b.z_end - 10.0)))
    if not spots:
        spots.append((sides[0].sign * (sides[0].walk[1] - 0.8), rng.uniform(10.0, 30.0)))
    for x, z in spots:
        radius, centre = rng.uniform(1.5, 3.2), rng.uniform(3.5, 6.5)
        layers = b.world("vegetation", front_face(x - 0.15, x + 0.15, 0.0, centre - 0.5 * radius, z),
                         colour_kind="bark")
        crown = ellipse_points(x, centre, radius, 0.85 * radius, 20, smooth_jitter(rng, 20, 0.2))
        layers += b.world("vegetation", np.concatenate([crown, np.full((20, 1), z)], axis=1))
        b.groups.append((z, layers))


def _persons(b: SceneBuilder, sides: List[Side]) -> None:
    """One to five pedestrians on the sidewalks (any side when there is none)."""
    rng, cam = b.rng, b.camera
    walks = [s for s in sides if s.urban] or sides
    wanted, placed = int(rng.integers(1, 6)), 0
    for _ in range(40):
        if placed >= wanted:
            break
        side = walks[int(rng.integers(len(walks)))]
        x = side.sign * rng.uniform(side.walk[0] + 0.3, side.walk[1] - 0.3)
        z = rng.uniform(6.0, 45.0)
        if not 0 <= cam.column(x, z) < cam.width:
            continue
        b.groups.append((z, _figure(b, "person", x, 0.0, z, rng.uniform(1.55, 1.95))))
        placed += 1


def _street_furniture(b: SceneBuilder, sides: List[Side]) -> None:
    """Bins, benches and boxes ("static") on the sidewalk."""
    rng = b.rng
    for _ in range(int(rng.integers(1, 3))):
        side = sides[int(rng.integers(2))]
        x = side.sign * rng.uniform(*side.walk)
        z = rng.uniform(1.0, 1.5) * b.visible_from(x + side.sign)
        half, height = rng.uniform(0.3, 0.7), rng.uniform(0.6, 1.2)
        box = box_corners(x - half, x + half, 0.0, height, z, z + 0.5)
        b.groups.append((z, b.make("static", [hull_polygon(b.camera, box)], True)))


def _vehicles(b: SceneBuilder, sides: List[Side], left: float, right: float,
              rail: Optional[float], rare: FrozenSet[str]) -> None:
    """Vehicles in the lanes (rare ones nearest in their lane, so visible), parked cars, bicycles."""
    rng = b.rng
    lanes = [k * LANE_WIDTH for k in range(-8, 9)
             if left + 0.4 * LANE_WIDTH <= k * LANE_WIDTH <= right - 0.4 * LANE_WIDTH
             and (rail is None or abs(k * LANE_WIDTH - rail) >= 0.5 * LANE_WIDTH)]
    free: Dict[float, float] = {lane: (8.0 if lane == 0 else 5.0) for lane in lanes}

    def place(lane: float, length: float, low: float, high: float) -> Optional[float]:
        z0 = max(free[lane] + rng.uniform(1.0, 4.0), rng.uniform(low, high))
        if z0 + length > b.z_end - 3.0:
            return None
        free[lane] = z0 + length
        return z0

    if rail is not None and "train" in rare:
        z0 = rng.uniform(12.0, 35.0)
        b.groups.append((z0, _vehicle(b, "train", rail, z0, (2.6, 3.4, 25.0))))
    rare_vehicles = [("motorcycle", (0.8, 1.1, 2.0), 7.0, 18.0), ("bicycle", (1.8, 1.0, 1.0), 7.0, 18.0),
                     ("truck", (2.5, 3.5, 8.0), 10.0, 30.0), ("bus", (2.55, 3.2, 12.0), 12.0, 35.0)]
    for kind, size, low, high in rare_vehicles:
        if kind not in rare or not lanes:
            continue
        lane = min(rng.permutation(lanes), key=lambda candidate: free[candidate])
        z0 = place(lane, size[2], low, high)
        if z0 is None:
            continue
        if kind == "bicycle":
            b.groups.append((z0, _bicycle(b, lane, z0 + 0.5, int(rng.choice([-1, 1])), True)))
        elif kind == "motorcycle":
            b.groups.append((z0, _motorcycle(b, lane + rng.uniform(-0.8, 0.8), z0)))
        else:
            b.groups.append((z0, _vehicle(b, kind, lane + rng.uniform(-0.3, 0.3), z0, size)))
    for _ in range(int(rng.integers(2, 7)) if lanes else 0):
        lane = lanes[int(rng.integers(len(lanes)))]
        size = (rng.uniform(1.7, 1.95), rng.uniform(1.4, 1.6), rng.uniform(4.0, 4.8))
        z0 = place(lane, size[2], 8.0, 60.0)
        if z0 is not None:
            b.groups.append((z0, _vehicle(b, "car", lane + rng.uniform(-0.3, 0.3), z0, size)))
    for side in sides:
        if side.parking:
            z0 = rng.uniform(6.0, 12.0)
            for _ in range(int(rng.integers(1, 4))):
                size = (rng.uniform(1.7, 1.95), rng.uniform(1.4, 1.6), rng.uniform(4.0, 4.8))
                b.groups.append((z0, _vehicle(b, "car", side.sign * (side.edge + 1.2), z0, size)))
                z0 += size[2] + rng.uniform(1.0, 6.0)
        if side.urban and "bicycle" in rare and rng.random() < 0.5:
            z0 = rng.uniform(6.0, 25.0)
            x = side.sign * rng.uniform(side.walk[0] + 0.6, side.walk[1] - 0.6)
            b.groups.append((z0, _bicycle(b, x, z0, int(rng.choice([-1, 1])), False)))


def place_street_objects(b: SceneBuilder, sides: List[Side], left: float, right: float,
                         rail: Optional[float], rare: FrozenSet[str]) -> None:
    """Add every street object of the scene to ``b`` as depth-tagged groups."""
    _poles(b, sides, rare)
    _trees(b, sides)
    _persons(b, sides)
    if "static" in rare:
        _street_furniture(b, sides)
    _vehicles(b, sides, left, right, rail, rare)


def overlay_layers(b: SceneBuilder) -> List[Layer]:
    """The ego-vehicle hood, the rectification border (left/right) and out of roi (bottom rows)."""
    rng, width, height = b.rng, b.camera.width, b.camera.height
    hood = rng.uniform(0.10, 0.16) * height
    xs = np.linspace(0.0, width - 1.0, 13)
    edge = height - 1.0 - hood * (1.0 - 0.55 * ((xs - width / 2) / (width / 2)) ** 2)
    outline = np.concatenate([np.stack([xs, edge], axis=1), [[width - 1.0, height - 1.0], [0.0, height - 1.0]]])
    layers = b.make("ego vehicle", [pixel_polygon(outline, width, height)], True)
    glare = np.stack([xs[4:9], edge[4:9] + 0.15 * hood], axis=1)
    glare = np.concatenate([glare, glare[::-1] + [0.0, 0.1 * hood]])
    layers += b.make("ego vehicle", [pixel_polygon(glare, width, height)], False, "steel")
    border = int(rng.integers(2, max(3, round(0.004 * width)) + 1))
    layers += b.make("rectification border", [b.rect(0, border - 1, 0, height - 1),
                                              b.rect(width - border, width - 1, 0, height - 1)], True)
    roi = max(1, round(0.01 * height))
    layers += b.make("out of roi", [b.rect(0, width - 1, height - roi, height - 1)], True)
    return layers
