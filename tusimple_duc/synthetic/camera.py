"""Geometry of the synthetic street scenes: a pinhole camera over a flat street, polygon clipping.

World coordinates are metres: ``X`` to the right, ``Y`` up from the ground, ``Z`` forward along
the street; the camera sits at ``(0, camera_height, 0)`` looking along ``Z`` with a level horizon.
Pixel coordinates are ``(x, y)`` = (column, row), as in the Cityscapes polygon files.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np


@dataclass(frozen=True)
class Camera:
    """A level pinhole camera: image size, focal lengths and horizon in pixels, height in metres."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    horizon: float
    camera_height: float

    @property
    def z_near(self) -> float:
        """Nearest depth (m) drawn: half the depth of the ground seen at the bottom row."""
        return 0.5 * self.fy * self.camera_height / max(self.height - self.horizon, 1.0)

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) with Z > 0 -> pixel coordinates (N, 2) float (x, y)."""
        points = np.asarray(points, dtype=np.float64)
        x = self.cx + self.fx * points[:, 0] / points[:, 2]
        y = self.horizon + self.fy * (self.camera_height - points[:, 1]) / points[:, 2]
        return np.stack([x, y], axis=1)

    def ground_row(self, z: float) -> float:
        """Row (px) of the ground at depth ``z`` (m)."""
        return self.horizon + self.fy * self.camera_height / z

    def column(self, x: float, z: float) -> float:
        """Column (px) of the world point at lateral offset ``x`` and depth ``z`` (m)."""
        return self.cx + self.fx * x / z

    def pixels_per_metre(self, z: float) -> float:
        """Horizontal size (px) of one metre at depth ``z`` (m)."""
        return self.fx / z


def clip_polygon(points: np.ndarray, axis: int, bound: float, keep_above: bool) -> np.ndarray:
    """Clip a polygon (N, D) to the half-space ``points[:, axis] >= bound`` (or ``<=``).

    Sutherland-Hodgman against one plane; returns the clipped polygon (M, D), possibly empty.
    """
    kept = []
    count = len(points)
    for index in range(count):
        current, following = points[index], points[(index + 1) % count]
        current_in = current[axis] >= bound if keep_above else current[axis] <= bound
        following_in = following[axis] >= bound if keep_above else following[axis] <= bound
        if current_in:
            kept.append(current)
        if current_in != following_in:
            t = (bound - current[axis]) / (following[axis] - current[axis])
            kept.append(current + t * (following - current))
    return np.asarray(kept, dtype=np.float64).reshape(-1, points.shape[1])


def pixel_polygon(points_xy: np.ndarray, width: int, height: int) -> Optional[np.ndarray]:
    """Clip a pixel polygon (N, 2) to the image, round it to integers, drop repeated vertices.

    Returns an int32 array (K, 2) of ``(x, y)`` with ``0 <= x < width``, ``0 <= y < height``,
    or None when fewer than 3 distinct vertices remain (nothing visible).
    """
    polygon = np.asarray(points_xy, dtype=np.float64)
    for axis, bound, keep_above in ((0, 0.0, True), (0, width - 1.0, False),
                                    (1, 0.0, True), (1, height - 1.0, False)):
        if len(polygon) == 0:
            return None
        polygon = clip_polygon(polygon, axis, bound, keep_above)
    if len(polygon) < 3:
        return None
    rounded = np.rint(polygon).astype(np.int32)
    changed = np.any(rounded != np.roll(rounded, 1, axis=0), axis=1)
    rounded = rounded[changed]
    if len(rounded) < 3 or len(np.unique(rounded, axis=0)) < 3:
        return None
    return rounded


def world_polygon(camera: Camera, points_xyz: np.ndarray) -> Optional[np.ndarray]:
    """A planar world polygon (N, 3) -> its visible pixel polygon (K, 2) int32, or None.

    The part nearer than ``camera.z_near`` is cut away before projecting.
    """
    near = clip_polygon(np.asarray(points_xyz, dtype=np.float64), 2, camera.z_near, True)
    if len(near) < 3:
        return None
    return pixel_polygon(camera.project(near), camera.width, camera.height)


def ground_quad(x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
    """Corners (4, 3) of the ground rectangle ``x0..x1`` by ``z0..z1`` (m)."""
    return np.array([[x0, 0.0, z0], [x1, 0.0, z0], [x1, 0.0, z1], [x0, 0.0, z1]])


def side_face(x: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """Corners (4, 3) of a vertical face in the plane ``X = x`` along the street (m)."""
    return np.array([[x, y0, z0], [x, y0, z1], [x, y1, z1], [x, y1, z0]])


def front_face(x0: float, x1: float, y0: float, y1: float, z: float) -> np.ndarray:
    """Corners (4, 3) of a vertical face facing the camera at depth ``z`` (m)."""
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]])


def box_corners(x0: float, x1: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """The 8 corners (8, 3) of an axis-aligned box (m)."""
    return np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)])


def hull_polygon(camera: Camera, points_xyz: np.ndarray) -> Optional[np.ndarray]:
    """Pixel polygon of the convex hull of world points (N, 3) all in front of ``z_near``."""
    projected = camera.project(points_xyz).astype(np.float32)
    hull = cv2.convexHull(projected)[:, 0, :]
    return pixel_polygon(hull, camera.width, camera.height)


def ellipse_points(cx: float, cy: float, rx: float, ry: float, count: int,
                   jitter: Optional[np.ndarray] = None) -> np.ndarray:
    """``count`` points (count, 2) on an ellipse, radii scaled by ``1 + jitter`` (count,) if given."""
    angles = np.linspace(0.0, 2.0 * np.pi, count, endpoint=False)
    scale = 1.0 if jitter is None else 1.0 + jitter
    return np.stack([cx + rx * scale * np.cos(angles), cy + ry * scale * np.sin(angles)], axis=1)


def smooth_jitter(rng: np.random.Generator, count: int, amplitude: float) -> np.ndarray:
    """Circular, smooth random radius offsets (count,) in ``[-amplitude, amplitude]``."""
    raw = rng.uniform(-1.0, 1.0, size=count)
    smooth = (np.roll(raw, 1) + 2.0 * raw + np.roll(raw, -1)) / 4.0
    return amplitude * smooth / max(np.abs(smooth).max(), 1e-6)


def thin_width(rng: np.random.Generator, image_width: int) -> int:
    """Width (px) of a thin object (pole, traffic light, traffic sign) in an image ``image_width`` wide.

    2..6 px at 512 px wide, growing with the fourth root of the width and capped at 7 px, so thin
    objects stay narrower than one output-stride-8 cell at every size (also 1024x2048).
    """
    width = round(rng.uniform(2.0, 6.0) * (image_width / 512.0) ** 0.25)
    return int(min(max(width, 2), 7))
