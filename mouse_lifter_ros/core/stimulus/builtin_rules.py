"""The built-in stimulus rules: a behaviour held for some frames, a keypoint in a region.

Both are edge-triggered (one trigger when the condition starts holding, one when it
stops) and share the stamp handling of the package docstring: a repeated stamp is
ignored, a stamp that goes back resets the rule (with an off trigger if it was on).
:data:`BUILTIN_RULES` names them for :func:`~.loader.load_rule`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.core.params import ParamSpec, at_least, half_open, non_empty, validate
from mouse_lifter_ros.core.stimulus.interface import BehaviorFrame, PoseFrame, Rule, Trigger
from mouse_lifter_ros.core.stimulus.regions import Region, parse_region, region_problem

_NS_PER_S = 1_000_000_000


class _Clock:
    """Stamp bookkeeping shared by the built-in rules: duplicates and streams that restart."""

    def __init__(self) -> None:
        self.last: int | None = None

    def step(self, stamp_ns: int) -> str:
        """``"new"``, ``"duplicate"`` (same stamp) or ``"back"`` (stamp went back)."""
        last, self.last = self.last, stamp_ns
        if last is None or stamp_ns > last:
            return "new"
        return "duplicate" if stamp_ns == last else "back"


def _gate(rule: BehaviorRule | RegionRule, stamp_ns: int,
          was_on: bool) -> tuple[bool, Trigger | None]:
    """Stamp handling of the built-in rules: ``(stop, trigger)``.

    A repeated stamp stops the frame; a stamp that went back resets ``rule`` and, when
    it was on, stops the frame with an off trigger; otherwise the frame goes on.
    """
    step = rule._clock.step(stamp_ns)
    if step == "duplicate":
        return True, None
    if step == "back":
        rule.reset()
        rule._clock.step(stamp_ns)
        if was_on:
            return True, Trigger(stamp_ns, rule.name, False, "stamps went back: reset")
    return False, None


def _raise_problems(owner: str, specs: Sequence[ParamSpec], values: Mapping[str, Any],
                    extra: Sequence[str] = ()) -> dict[str, Any]:
    """:func:`validate` ``values``, adding ``extra`` problem lines to the same error."""
    problems = [f"  {line}" for line in extra]
    try:
        out = validate(specs, values, owner=owner)
    except ParameterError as exc:
        problems = str(exc).splitlines()[1:] + problems
        out = {}
    if problems:
        raise ParameterError(f"{owner}: invalid parameters:\n" + "\n".join(problems))
    return out


class BehaviorRule(Rule):
    """Behaviour ``behavior`` with probability above ``min_probability`` for ``min_frames``.

    Edge-triggered: one on trigger (``value`` True) on the ``min_frames``-th consecutive
    behaviour frame whose probability of ``behavior`` is above ``min_probability``, and
    one off trigger on the first frame after that where it is not (no trigger on the
    frames in between). A flicker shorter than ``min_frames`` frames fires nothing.

    ``refractory_s``: after an off trigger, no on trigger for this many seconds (by the
    frames' stamps). The condition is still checked every frame, so a bout that is still
    holding when the refractory period ends fires then.

    Raises
    ------
    ParameterError
        Listing every invalid value: ``behavior`` empty, ``min_probability`` outside
        [0, 1), ``min_frames`` < 1, ``refractory_s`` < 0.
    """

    PARAMS = (
        ParamSpec("behavior", "rearing", "behaviour class", non_empty, "non-empty"),
        ParamSpec("min_probability", 0.6, "probability threshold", half_open(0.0, 1.0),
                  ">= 0, < 1"),
        ParamSpec("min_frames", 3, "consecutive frames", at_least(1), ">= 1"),
        ParamSpec("refractory_s", 0.0, "seconds", at_least(0.0), ">= 0"),
    )

    def __init__(self, behavior: str, min_probability: float, min_frames: int, *,
                 refractory_s: float = 0.0) -> None:
        p = _raise_problems("BehaviorRule", self.PARAMS, {
            "behavior": behavior, "min_probability": min_probability,
            "min_frames": min_frames, "refractory_s": refractory_s})
        self.behavior: str = p["behavior"]
        self.min_probability: float = p["min_probability"]
        self.min_frames: int = p["min_frames"]
        self.refractory_ns = round(p["refractory_s"] * _NS_PER_S)
        self.name = f"behavior:{self.behavior}"
        self.reset()

    def reset(self) -> None:
        """Back to off, with no streak and no refractory period."""
        self.active = False
        self.streak = 0
        self._last_off: int | None = None
        self._clock = _Clock()

    def on_behavior(self, frame: BehaviorFrame) -> Trigger | None:
        """Count the streak of frames above the threshold; fire on its edges."""
        stop, trigger = _gate(self, frame.stamp_ns, self.active)
        if stop:
            return trigger
        p = frame.probability(self.behavior)
        holds = p > self.min_probability  # NaN: False
        self.streak = self.streak + 1 if holds else 0
        if self.active and not holds:
            self.active = False
            self._last_off = frame.stamp_ns
            return Trigger(frame.stamp_ns, self.name, False,
                           f"{self.behavior} p={p:.2f} <= {self.min_probability:g}")
        if (not self.active and self.streak >= self.min_frames
                and (self._last_off is None
                     or frame.stamp_ns - self._last_off >= self.refractory_ns)):
            self.active = True
            return Trigger(frame.stamp_ns, self.name, True,
                           f"{self.behavior} p={p:.2f} > {self.min_probability:g} "
                           f"for {self.streak} frames")
        return None


class _Debounce:
    """A boolean state that changes after ``frames`` consecutive frames saying so."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.state = False
        self.streak = 0

    def update(self, condition: bool) -> bool:
        """Feed one frame's condition; True when the state changed on this frame."""
        if condition == self.state:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak < self.frames:
            return False
        self.state, self.streak = condition, 0
        return True


class RegionRule(Rule):
    """Keypoint ``keypoint`` inside ``region`` of the arena floor.

    Fires on (``value`` True) when the keypoint enters the region and off when it
    leaves; only its x and y count (the region is a prism over the floor). ``region``
    is a :class:`Circle`, :class:`Rectangle` or :class:`Polygon`, or any form
    :func:`parse_region` reads (``(cx, cy, r)``, ``(x0, y0, x1, y1)``, ``[(x, y), ...]``).

    Hysteresis, two kinds, both optional:

    * ``min_frames`` (time): the keypoint must be inside for this many consecutive
      frames to enter, and outside for as many to leave (1: every crossing counts).
    * ``margin`` (space, metres): entering needs the point inside the region (or on its
      boundary); leaving needs it more than ``margin`` outside, so a point jittering on
      the boundary does not toggle the stimulus.

    ``require_valid``: frames where the keypoint was filled in by the body model
    (``valid`` False) are skipped: they neither count towards nor break a streak. With
    False, filled-in positions count too. A non-finite position is always skipped.

    Raises
    ------
    ParameterError
        Listing every invalid value.
    """

    PARAMS = (
        ParamSpec("keypoint", "spine_center", "keypoint name", non_empty, "non-empty"),
        ParamSpec("min_frames", 1, "consecutive frames", at_least(1), ">= 1"),
        ParamSpec("margin", 0.0, "metres", at_least(0.0), ">= 0"),
        ParamSpec("require_valid", True, "skip filled-in keypoints"),
    )

    def __init__(self, keypoint: str, region: Any, *, min_frames: int = 1,
                 margin: float = 0.0, require_valid: bool = True) -> None:
        problem = region_problem(region)
        p = _raise_problems(
            "RegionRule", self.PARAMS,
            {"keypoint": keypoint, "min_frames": min_frames, "margin": margin,
             "require_valid": require_valid},
            [f"region = {region!r}: {problem}"] if problem else ())
        self.keypoint: str = p["keypoint"]
        self.region: Region = parse_region(region)
        self.min_frames: int = p["min_frames"]
        self.margin: float = p["margin"]
        self.require_valid: bool = p["require_valid"]
        self.name = f"region:{self.keypoint}"
        self.reset()

    @property
    def inside(self) -> bool:
        """Whether the keypoint is (debounced) inside the region now."""
        return self._state.state

    def reset(self) -> None:
        """Back to outside, with no streak."""
        self._state = _Debounce(self.min_frames)
        self._clock = _Clock()

    def on_pose(self, frame: PoseFrame) -> Trigger | None:
        """Test the keypoint against the region; fire when the debounced state changes."""
        stop, trigger = _gate(self, frame.stamp_ns, self.inside)
        if stop:
            return trigger
        i = frame.index(self.keypoint)
        x, y, _ = frame.positions[i]
        if not (math.isfinite(x) and math.isfinite(y)) or (
                self.require_valid and not frame.valid[i]):
            return None
        d = self.region.signed_distance(float(x), float(y))
        if not self._state.update(d <= (self.margin if self.inside else 0.0)):
            return None
        verb = "entered" if self.inside else "left"
        return Trigger(frame.stamp_ns, self.name, self.inside,
                       f"{self.keypoint} {verb} {self.region} at ({x:.3f}, {y:.3f})")


#: The built-in rules by spec (:func:`~.loader.load_rule`).
BUILTIN_RULES: dict[str, Callable[..., Rule]] = {
    "builtin:behavior": BehaviorRule,
    "builtin:region": RegionRule,
}
