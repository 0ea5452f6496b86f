"""The surface the mouse stands on, measured in the image: where the bedding meets the
arena's walls.

A calibration made on the cage floor (a board, or the floor's corners) knows the floor,
not the bedding a lab then fills in. The bedding's top meets the four walls along the
floor's outline raised by the bedding's depth ``h``; seen from above that line moves
towards the image centre as ``h`` grows (about 9 px for 20 mm at 47 cm and 500 px focal
length). :func:`bedding_from_walls` projects the outline at each depth from 0 to
:data:`~.arena.MAX_BEDDING_M` and keeps the depth where the image's brightness changes
most sharply across it, refined to a fraction of the step. The mouse itself cannot give
the depth: from one camera a mouse on 2 cm of bedding looks like a 4 % larger mouse on
the floor.

It needs the arena's size (the walls' inner faces) and a top view, and assumes a level
bedding surface; where the bedding is heaped against a wall, the depth is that of the
line along the walls, not under the mouse. numpy and OpenCV only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.arena import MAX_BEDDING_M, ArenaCalibration
from mouse_lifter_ros.core.errors import CalibrationError

#: Depth step of the search, metres (then refined between steps).
STEP_M: Final = 0.0005
#: Points sampled along each wall.
POINTS_PER_WALL: Final = 400
#: Fewest outline points in the image (away from its border) to measure on.
MIN_EDGE_POINTS: Final = 150
#: The best depth's edge strength must be this many times the median over all depths,
#: else no wall line stands out (walls out of view, or the same shade as the bedding).
MIN_CONTRAST: Final = 2.0
#: Least edge strength at the best depth, grey levels per px across the line (a black
#: floor meeting dark walls gave 0.5, and the right depth).
MIN_EDGE: Final = 0.25
#: How far inside the outline the gradient's direction is taken, metres.
_INWARD_M: Final = 0.005


@dataclass(frozen=True)
class WallFit:
    """What :func:`bedding_from_walls` measured.

    Attributes
    ----------
    depth:
        The bedding's depth over the calibrated floor, metres.
    edge_points:
        Outline points inside the image at that depth.
    strength:
        The edge's strength at that depth, grey levels per px across the line (at
        least :data:`MIN_EDGE`).
    contrast:
        That strength over the median over all depths (at least :data:`MIN_CONTRAST`).
    """

    depth: float
    edge_points: int
    strength: float
    contrast: float


def _outline(size: tuple[float, float]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(4 * POINTS_PER_WALL, 2) points along the floor's outline (centred on the arena
    origin), metres, and the same points moved :data:`_INWARD_M` towards the inside."""
    hx, hy = size[0] / 2.0, size[1] / 2.0
    s = np.linspace(-1.0, 1.0, POINTS_PER_WALL + 2)[1:-1]  # not the corners themselves
    zero = np.zeros_like(s)
    walls = [(s * hx, zero - hy, zero, zero + 1), (zero + hx, s * hy, zero - 1, zero),
             (s * hx, zero + hy, zero, zero - 1), (zero - hx, s * hy, zero + 1, zero)]
    pts = np.concatenate([np.stack([x, y], 1) for x, y, _, _ in walls])
    inward = np.concatenate([np.stack([dx, dy], 1) for _, _, dx, dy in walls])
    return pts, pts + _INWARD_M * inward


def _background(images: Sequence[NDArray[np.uint8]]) -> NDArray[np.float32]:
    """The grey median of ``images`` (a moving mouse leaves it), lightly blurred."""
    grey = [cv2.cvtColor(im, cv2.COLOR_BGR2GRAY) if im.ndim == 3 else im for im in images]
    stack = np.median(np.stack(grey), axis=0) if len(grey) > 1 else grey[0]
    return np.asarray(cv2.GaussianBlur(np.asarray(stack, np.float32), (0, 0), 1.0),
                      np.float32)


def edge_strengths(floor: ArenaCalibration, images: Sequence[NDArray[np.uint8]],
                   size: tuple[float, float], depths: NDArray[np.float64]
                   ) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """For each of ``depths`` (D,) metres over ``floor``'s calibrated floor: the mean
    brightness gradient (grey levels per px) across the walls' foot at that height,
    taken wall by wall with its sign (a wall is darker or lighter than the bedding all
    along), and how many outline points lie inside the image. (D,), (D,)."""
    img = _background(images)
    h, w = img.shape
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    pts, inner = _outline(size)
    wall = np.repeat(np.arange(4), POINTS_PER_WALL)
    camera = replace(floor, bedding=0.0)  # the calibrated floor, under any bedding
    strength = np.zeros(len(depths))
    count = np.zeros(len(depths), np.intp)
    for i, d in enumerate(depths):
        z = np.full((len(pts), 1), float(d))
        p, zc = camera.project(np.hstack([pts, z]))
        q, _ = camera.project(np.hstack([inner, z]))
        n = q - p
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
        ok = (zc > 0) & (p[:, 0] >= 2) & (p[:, 0] <= w - 3) & (p[:, 1] >= 2) & \
            (p[:, 1] <= h - 3)
        count[i] = int(ok.sum())
        if not ok.any():
            continue
        mx, my = p[ok, 0].astype(np.float32)[None], p[ok, 1].astype(np.float32)[None]
        sx = cv2.remap(gx, mx, my, cv2.INTER_LINEAR)[0]
        sy = cv2.remap(gy, mx, my, cv2.INTER_LINEAR)[0]
        across = sx * n[ok, 0] + sy * n[ok, 1]
        per_wall = [across[wall[ok] == k] for k in range(4)]
        strength[i] = sum(abs(float(a.sum())) for a in per_wall) / count[i]
    return strength, count


def bedding_from_walls(floor: ArenaCalibration, images: Sequence[NDArray[np.uint8]], *,
                       arena_size: tuple[float, float] | None = None) -> WallFit:
    """The bedding's depth over ``floor``'s calibrated floor, from where its surface
    meets the walls in ``images`` (one or more (H, W) grey or (H, W, 3) BGR uint8 frames
    of the fixed camera; their median is used, so a moving mouse drops out).

    ``arena_size`` (x, y extent of the walls' inner faces, metres) defaults to the
    calibration's. Raises :class:`~.errors.CalibrationError` listing every problem: no
    images or of another size than the calibration's, no arena size, a camera under the
    floor, too little of the walls' foot in view (:data:`MIN_EDGE_POINTS`), or no line
    that stands out (:data:`MIN_EDGE`, :data:`MIN_CONTRAST`).
    """
    problems = []
    size = arena_size if arena_size is not None else floor.arena_size
    if size is None:
        problems.append("the arena's size is not known: calibrate with --arena-size WxH "
                        "(corners) or give it")
    if floor.view != "top":
        problems.append(f"a {floor.view}-view camera: the bedding is measured from above")
    if not images:
        problems.append("no image")
    elif any(im.shape[:2] != (floor.height, floor.width) for im in images):
        shapes = sorted({f"{im.shape[1]}x{im.shape[0]}" for im in images})
        problems.append(f"images of {', '.join(shapes)} px; the calibration is of "
                        f"{floor.width}x{floor.height}")
    if problems:
        raise CalibrationError("bedding from the walls: " + "; ".join(problems))
    assert size is not None
    depths = np.arange(0.0, MAX_BEDDING_M + STEP_M / 2, STEP_M)
    strength, count = edge_strengths(floor, images, size, depths)
    k = int(np.argmax(strength))
    median = float(np.median(strength))
    contrast = float(strength[k] / median) if median > 0 else \
        (float("inf") if strength[k] > 0 else 0.0)
    if count[k] < MIN_EDGE_POINTS:
        problems.append(f"{count[k]} points of the walls' foot in view (at least "
                        f"{MIN_EDGE_POINTS}): the walls must be in the image")
    elif contrast < MIN_CONTRAST or strength[k] < MIN_EDGE:
        problems.append(f"no line along the walls stands out (edge {strength[k]:.2f} grey "
                        f"levels per px, at least {MIN_EDGE:g}; {contrast:.2f} times the "
                        f"median over depths, at least {MIN_CONTRAST:g}): walls and "
                        "bedding of one shade, or walls out of view")
    if problems:
        raise CalibrationError("bedding from the walls: " + "; ".join(problems))
    depth = float(depths[k])
    if 0 < k < len(depths) - 1:  # the parabola's vertex through the best and neighbours
        a, b, c = strength[k - 1], strength[k], strength[k + 1]
        den = a - 2 * b + c
        if den < 0:
            depth += STEP_M * float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))
    return WallFit(depth=max(0.0, depth), edge_points=int(count[k]),
                   strength=float(strength[k]), contrast=contrast)
