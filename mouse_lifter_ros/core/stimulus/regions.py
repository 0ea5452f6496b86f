"""Regions of the arena floor: circle, rectangle and polygon, and their parser.

Coordinates are metres in the arena frame (x, y on the floor, origin at the arena
centre); a region is a prism over the floor, so only x and y count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

from mouse_lifter_ros.core.params import parses


@dataclass(frozen=True)
class Circle:
    """A disc on the arena floor: centre ``(cx, cy)`` and radius ``r``, metres."""

    cx: float
    cy: float
    r: float

    def signed_distance(self, x: float, y: float) -> float:
        """Distance to the boundary, metres: negative inside, positive outside."""
        return math.hypot(x - self.cx, y - self.cy) - self.r

    def __str__(self) -> str:
        return f"circle ({self.cx:g}, {self.cy:g}) r={self.r:g} m"


@dataclass(frozen=True)
class Rectangle:
    """An axis-aligned rectangle on the floor, corners ``(x0, y0)`` < ``(x1, y1)``, metres."""

    x0: float
    y0: float
    x1: float
    y1: float

    def signed_distance(self, x: float, y: float) -> float:
        """Distance to the boundary, metres: negative inside, positive outside."""
        dx = max(self.x0 - x, x - self.x1)
        dy = max(self.y0 - y, y - self.y1)
        if dx <= 0 and dy <= 0:
            return max(dx, dy)
        return math.hypot(max(dx, 0.0), max(dy, 0.0))

    def __str__(self) -> str:
        return f"rectangle ({self.x0:g}, {self.y0:g})-({self.x1:g}, {self.y1:g}) m"


@dataclass(frozen=True)
class Polygon:
    """A polygon on the floor, vertices ``((x, y), ...)`` in metres (even-odd inside rule)."""

    vertices: tuple[tuple[float, float], ...]

    def signed_distance(self, x: float, y: float) -> float:
        """Distance to the nearest edge, metres: negative inside, positive outside."""
        inside = False
        best = math.inf
        n = len(self.vertices)
        for i in range(n):
            ax, ay = self.vertices[i]
            bx, by = self.vertices[(i + 1) % n]
            if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
                inside = not inside
            ex, ey = bx - ax, by - ay
            t = ((x - ax) * ex + (y - ay) * ey) / (ex * ex + ey * ey or 1.0)
            t = min(max(t, 0.0), 1.0)
            best = min(best, math.hypot(x - ax - t * ex, y - ay - t * ey))
        return -best if inside else best

    def __str__(self) -> str:
        return f"polygon of {len(self.vertices)} vertices"


Region: TypeAlias = Circle | Rectangle | Polygon

REGION_FORMS = ("[cx, cy, r] (circle), [x0, y0, x1, y1] (rectangle) or "
                "[x1, y1, x2, y2, x3, y3, ...] (polygon, >= 3 vertices), metres")


def parse_region(value: Any) -> Region:
    """A region from a :data:`Region`, a flat list of numbers or a list of ``(x, y)``.

    Flat lists (the ``region`` parameter): 3 numbers ``cx, cy, r`` are a circle, 4
    ``x0, y0, x1, y1`` a rectangle (two opposite corners, any order), 6 or more (even)
    a polygon's vertices ``x1, y1, x2, y2, ...``. A list of pairs is a polygon.

    Raises
    ------
    ValueError
        Saying what is wrong and what is allowed.
    """
    if isinstance(value, Circle | Rectangle | Polygon):
        return value
    if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray):
        raise ValueError(f"must be {REGION_FORMS}")
    items = list(value)
    flat = not (items and all(isinstance(v, Sequence | np.ndarray) and not isinstance(v, str)
                              for v in items))
    if not flat:
        if any(len(v) != 2 for v in items):
            raise ValueError("a polygon's vertices must each be (x, y)")
        numbers = [c for v in items for c in v]
        if len(items) < 3:
            raise ValueError(f"a polygon needs >= 3 vertices, got {len(items)}")
    else:
        numbers = items
    if not all(isinstance(v, int | float | np.number) and not isinstance(v, bool)
               for v in numbers):
        raise ValueError(f"must be numbers: {REGION_FORMS}")
    n = [float(v) for v in numbers]
    if not all(math.isfinite(v) for v in n):
        raise ValueError("must be finite numbers")
    if len(n) == 3 and flat:
        if n[2] <= 0:
            raise ValueError("a circle's radius must be > 0")
        return Circle(*n)
    if len(n) == 4 and flat:
        x0, x1 = sorted(n[0::2])
        y0, y1 = sorted(n[1::2])
        if x0 == x1 or y0 == y1:
            raise ValueError("a rectangle's corners must differ in both x and y")
        return Rectangle(x0, y0, x1, y1)
    if len(n) >= 6 and len(n) % 2 == 0:
        vertices = tuple(zip(n[0::2], n[1::2], strict=True))
        area2 = sum(ax * by - bx * ay for (ax, ay), (bx, by)
                    in zip(vertices, vertices[1:] + vertices[:1], strict=True))
        if area2 == 0:
            raise ValueError("a polygon must enclose an area")
        return Polygon(vertices)
    raise ValueError(f"has {len(n)} numbers; must be {REGION_FORMS}")


#: :class:`ParamSpec` check of a ``region`` parameter: None or what is wrong.
region_problem = parses(parse_region)
