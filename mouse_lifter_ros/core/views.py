"""The sides a camera can see the mouse from, defined once for the calibration, the
synthetic engine, the models and the command line.

- ``top``: above the arena, looking down at the floor (z of the arena frame points at
  the camera);
- ``bottom``: under a clear floor, looking up through it (z points away from it).

An arena calibration knows its view from where its camera is
(:attr:`~mouse_lifter_ros.core.arena.ArenaCalibration.view`); a model records the view it
was trained on in its YAML (``view:``, ``top`` when absent).
"""

from __future__ import annotations

from typing import Final

#: Camera placements: ``top`` above the arena, ``bottom`` under its clear floor.
VIEWS: Final[tuple[str, ...]] = ("top", "bottom")


def view_of(camera_z: float) -> str:
    """The view of a camera whose centre is ``camera_z`` metres above the floor (arena
    frame): ``top`` above it, ``bottom`` under it."""
    return "top" if camera_z > 0 else "bottom"


def view_suffix(view: str, sep: str = "-") -> str:
    """What a model's or a cache's name adds for ``view``: nothing for the top view (the
    names from before there were views), else ``sep`` and the view."""
    return "" if view == "top" else f"{sep}{view}"


def view_problem(view: object, what: str = "view") -> str | None:
    """None when ``view`` is one of :data:`VIEWS`, else the sentence saying so."""
    if view in VIEWS:
        return None
    return f"{what} {view!r}: {' or '.join(VIEWS)} (the side the camera sees the mouse from)"
