"""Closed-loop stimulus: rules that turn poses and behaviour into on/off triggers.

A *rule* watches the stream of 3D poses (:class:`PoseFrame`, from ``Pose3D``) and
behaviour estimates (:class:`BehaviorFrame`, from ``Behavior``) and returns a
:class:`Trigger` (stimulus on or off) when its condition starts or stops holding. The
interface (:class:`Rule`) is three methods, like DeepLabCut-Live's ``Processor``:

``on_pose(frame) -> Trigger | None``
    Called for every pose, in stamp order.
``on_behavior(frame) -> Trigger | None``
    Called for every behaviour estimate.
``reset() -> None``
    Forget all state (a new session, or the stream's stamps went back).

Contract: every method returns quickly (well under one frame period: no file or
network I/O, no sleeping, no waiting on locks held elsewhere). A rule that needs heavy
work runs it in a thread of its own and reads the latest result in ``on_pose``. The
methods are only ever called from one thread at a time (:class:`StimulusRunner`'s
worker), so a rule needs no locks for its own state.

Two rules are built in: :class:`BehaviorRule` (a behaviour's probability above ``p``
for ``k`` consecutive frames) and :class:`RegionRule` (a keypoint inside a region of the
arena floor). A lab's own rule is a class in a module or a ``.py`` file, selected by
:func:`load_rule` with ``"package.module:ClassName"`` or ``"/path/to/file.py:ClassName"``
(see ``mouse_lifter_ros/examples/nose_height_rule.py``).

:class:`StimulusRunner` runs a rule behind a bounded queue in a worker thread, so that
the ROS callback only enqueues: it never waits for the rule. A full queue drops its
oldest frame (counted). Each trigger is handed to a callback (the node publishes it)
with its latency, the clock's time minus the stamp of the frame that caused it.

Time: stamps are ``int`` nanoseconds (the capture stamp of the source image). The
built-in rules treat a frame whose stamp equals the previous one as a duplicate
(ignored) and a stamp that goes back as a new stream (state reset, and an off trigger
if the stimulus was on). Positions are metres in the arena frame (REP-103: x, y on the
floor, z up, origin at the arena centre).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import json
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeAlias, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError, ParameterError
from mouse_lifter_ros.core.params import ParamSpec, at_least, parses, validate
from mouse_lifter_ros.core.stats import StreamStats

_NS_PER_S = 1_000_000_000


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True, eq=False)
class PoseFrame:
    """One 3D pose (the content of a ``Pose3D`` message).

    Attributes
    ----------
    stamp_ns:
        Capture stamp of the source image, nanoseconds (``Pose3D.source_stamp``).
    names:
        Keypoint names, in the order of the arrays.
    positions:
        (K, 3) keypoint positions in the arena frame, metres (float64).
    valid:
        (K,) True where the keypoint was observed, False where the body model filled it in.
    confidence:
        (K,) confidence 0..1.
    """

    stamp_ns: int
    names: tuple[str, ...]
    positions: NDArray[np.float64]
    valid: NDArray[np.bool_]
    confidence: NDArray[np.float64]

    def __post_init__(self) -> None:
        k = len(self.names)
        positions = np.asarray(self.positions, dtype=np.float64)
        valid = np.asarray(self.valid, dtype=np.bool_)
        confidence = np.asarray(self.confidence, dtype=np.float64)
        if positions.shape != (k, 3) or valid.shape != (k,) or confidence.shape != (k,):
            raise InputError(
                f"PoseFrame: {k} names need positions (K, 3), valid (K,) and confidence (K,); "
                f"got {positions.shape}, {valid.shape}, {confidence.shape}")
        object.__setattr__(self, "stamp_ns", int(self.stamp_ns))
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "positions", positions)
        object.__setattr__(self, "valid", valid)
        object.__setattr__(self, "confidence", confidence)

    def index(self, name: str) -> int:
        """The index of keypoint ``name``; :class:`InputError` naming the known ones if absent."""
        try:
            return self.names.index(name)
        except ValueError:
            raise InputError(f"pose has no keypoint {name!r} (it has: "
                             f"{', '.join(self.names) or 'none'})") from None

    def position(self, name: str) -> NDArray[np.float64]:
        """(3,) position of keypoint ``name`` in the arena frame, metres."""
        out: NDArray[np.float64] = self.positions[self.index(name)]
        return out

    def is_valid(self, name: str) -> bool:
        """Whether keypoint ``name`` was observed (not filled in) and its position is finite."""
        i = self.index(name)
        return bool(self.valid[i]) and bool(np.isfinite(self.positions[i]).all())


@dataclass(frozen=True, eq=False)
class BehaviorFrame:
    """One behaviour estimate (the content of a ``Behavior`` message).

    Attributes
    ----------
    stamp_ns:
        Capture stamp of the source image of the newest pose used, nanoseconds.
    label:
        The most probable class.
    class_names:
        Every class, in the order of ``probabilities``.
    probabilities:
        (C,) probability of each class, 0..1.
    """

    stamp_ns: int
    label: str
    class_names: tuple[str, ...]
    probabilities: NDArray[np.float64]

    def __post_init__(self) -> None:
        probabilities = np.asarray(self.probabilities, dtype=np.float64)
        if probabilities.shape != (len(self.class_names),):
            raise InputError(f"BehaviorFrame: {len(self.class_names)} class names need "
                             f"({len(self.class_names)},) probabilities, got "
                             f"{probabilities.shape}")
        object.__setattr__(self, "stamp_ns", int(self.stamp_ns))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "probabilities", probabilities)

    def probability(self, name: str) -> float:
        """The probability of class ``name``; :class:`InputError` naming the classes if absent."""
        try:
            return float(self.probabilities[self.class_names.index(name)])
        except ValueError:
            raise InputError(f"behaviour {name!r} is not one of the classifier's classes "
                             f"({', '.join(self.class_names) or 'none'})") from None


Frame: TypeAlias = PoseFrame | BehaviorFrame


@dataclass(frozen=True)
class Trigger:
    """A rule's decision: turn the stimulus on (``value`` True) or off.

    Attributes
    ----------
    stamp_ns:
        Stamp of the frame that caused it (the source image's capture stamp), ns.
    rule:
        Name of the rule, e.g. ``"behavior:rearing"``.
    value:
        True: stimulus on; False: stimulus off.
    reason:
        One human-readable line, e.g. ``"rearing p=0.82 > 0.6 for 3 frames"``.
    """

    stamp_ns: int
    rule: str
    value: bool
    reason: str = ""


# --------------------------------------------------------------------------- interface


@runtime_checkable
class Rule(Protocol):
    """The interface of a stimulus rule (structural: any class with these methods is one).

    Subclass it to inherit do-nothing defaults and override only what the rule needs.
    Every method must return quickly: no I/O, no sleeping; heavy work belongs in a thread
    of the rule's own. The methods are called from one thread at a time.
    """

    def on_pose(self, frame: PoseFrame) -> Trigger | None:
        """Called for each pose, in stamp order; return a trigger or None."""
        return None

    def on_behavior(self, frame: BehaviorFrame) -> Trigger | None:
        """Called for each behaviour estimate; return a trigger or None."""
        return None

    def reset(self) -> None:
        """Forget all state (no trigger is sent: the caller decides what to do)."""
        return None


RULE_METHODS = ("on_pose", "on_behavior", "reset")


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


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _probability(value: float) -> str | None:
    return None if 0.0 <= value < 1.0 else "must be >= 0 and < 1"


# --------------------------------------------------------------------------- built-in rules


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
        ParamSpec("behavior", "rearing", "behaviour class", _non_empty, "non-empty"),
        ParamSpec("min_probability", 0.6, "probability threshold", _probability, ">= 0, < 1"),
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
        ParamSpec("keypoint", "spine_center", "keypoint name", _non_empty, "non-empty"),
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


# --------------------------------------------------------------------------- loading rules

BUILTIN_RULES: dict[str, Callable[..., Rule]] = {
    "builtin:behavior": BehaviorRule,
    "builtin:region": RegionRule,
}

SPEC_FORMS = ("builtin:behavior, builtin:region, package.module:ClassName or "
              "/path/to/file.py:ClassName")


def _is_file_spec(module: str) -> bool:
    return module.endswith(".py") or "/" in module or os.sep in module


def spec_problem(spec: str) -> str | None:
    """Check the form of a rule spec (not whether it imports): None or what is wrong."""
    if spec.startswith("builtin:"):
        return None if spec in BUILTIN_RULES else (
            f"unknown built-in rule (known: {', '.join(BUILTIN_RULES)})")
    module, sep, attr = spec.rpartition(":")
    if not sep or not module or not all(part.isidentifier() for part in attr.split(".")):
        return f"must be {SPEC_FORMS}"
    if not _is_file_spec(module) and not all(p.isidentifier() for p in module.split(".")):
        return f"must be {SPEC_FORMS}"
    return None


def _import_file(path: Path, spec: str) -> Any:
    if not path.is_file():
        raise ParameterError(f"rule {spec!r}: no such file {path}")
    name = f"_mouse_lifter_rule_{path.stem}_{abs(hash(str(path))):x}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ParameterError(f"rule {spec!r}: {path} is not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ParameterError(f"rule {spec!r}: error while importing {path}: "
                             f"{type(exc).__name__}: {exc}") from exc
    return module


def _import_module(module_name: str, spec: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        raise ParameterError(f"rule {spec!r}: cannot import {module_name}: "
                             f"{type(exc).__name__}: {exc}") from exc


def _interface_problem(obj: Any) -> str | None:
    missing = [m for m in RULE_METHODS if not callable(getattr(obj, m, None))]
    if missing:
        return (f"missing {', '.join(missing)} (subclass "
                f"mouse_lifter_ros.core.stimulus.Rule to inherit do-nothing defaults)")
    asynchronous = [m for m in RULE_METHODS if inspect.iscoroutinefunction(getattr(obj, m))]
    if asynchronous:
        return f"{', '.join(asynchronous)} must be plain methods, not async"
    cls = obj if inspect.isclass(obj) else type(obj)
    if (getattr(cls, "on_pose", None) is Rule.on_pose
            and getattr(cls, "on_behavior", None) is Rule.on_behavior):
        return "overrides neither on_pose nor on_behavior, so it can never fire"
    return None


def load_rule(spec: str, params: Mapping[str, Any] | None = None) -> Rule:
    """Create the rule that ``spec`` names, with keyword arguments ``params``.

    Parameters
    ----------
    spec:
        ``"builtin:behavior"`` (:class:`BehaviorRule`), ``"builtin:region"``
        (:class:`RegionRule`), ``"package.module:ClassName"`` (an importable module) or
        ``"/path/to/file.py:ClassName"`` (a lab's file, imported as it is).
    params:
        Keyword arguments of the class's constructor.

    Raises
    ------
    ParameterError
        Naming ``spec``: a malformed spec, a module or file that cannot be imported
        (with the import's own error), a missing class, a class that does not implement
        :class:`Rule` (which methods it lacks), or constructor arguments it rejects.
    """
    kwargs = dict(params or {})
    problem = spec_problem(spec)
    if problem:
        raise ParameterError(f"rule {spec!r}: {problem}")
    if spec in BUILTIN_RULES:
        factory: Any = BUILTIN_RULES[spec]
        label = factory.__name__
    else:
        module_name, _, attr = spec.rpartition(":")
        module = (_import_file(Path(module_name).expanduser().resolve(), spec)
                  if _is_file_spec(module_name) else _import_module(module_name, spec))
        factory = module
        for part in attr.split("."):
            if not hasattr(factory, part):
                defined = sorted(n for n, v in vars(module).items()
                                 if inspect.isclass(v) and v.__module__ == module.__name__)
                raise ParameterError(f"rule {spec!r}: {module_name} has no {attr} (classes "
                                     f"it defines: {', '.join(defined) or 'none'})")
            factory = getattr(factory, part)
        label = attr
        # Checked before anything is called: a spec naming a function (os:system) must
        # never run it with the lab's parameters.
        if not inspect.isclass(factory):
            raise ParameterError(f"rule {spec!r}: {attr} is a {type(factory).__name__}, "
                                 "not a class; name a class implementing the Rule interface "
                                 "(subclass mouse_lifter_ros.core.stimulus.Rule)")
        if problem := _interface_problem(factory):
            raise ParameterError(f"rule {spec!r}: {attr} does not implement the Rule "
                                 f"interface: {problem}")
    try:
        signature: inspect.Signature | None = inspect.signature(factory)
    except (TypeError, ValueError):  # no signature to check: let the call decide
        signature = None
    if signature is not None:
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            raise ParameterError(f"rule {spec!r}: {label} cannot take the parameters "
                                 f"{sorted(kwargs)}: {exc} (it is {label}{signature})"
                                 ) from exc
    try:
        rule = factory(**kwargs)
    except ParameterError as exc:
        raise ParameterError(f"rule {spec!r}: {exc}") from exc
    except Exception as exc:
        raise ParameterError(f"rule {spec!r}: {label}(**{kwargs!r}) failed: "
                             f"{type(exc).__name__}: {exc}") from exc
    if problem := _interface_problem(rule):
        raise ParameterError(f"rule {spec!r}: {label}(...) returned an object that does "
                             f"not implement the Rule interface: {problem}")
    return rule  # type: ignore[no-any-return]


def rule_from_params(values: Mapping[str, Any]) -> Rule:
    """The rule that a ``stimulus_node``'s validated parameters select.

    ``rule`` picks it; the built-in rules take ``behavior``, ``min_probability``,
    ``min_frames`` and ``refractory`` (``builtin:behavior``) or ``keypoint``, ``region``
    and ``min_frames`` (``builtin:region``); a lab's own rule gets the JSON object in
    ``rule_params`` as keyword arguments.

    Raises
    ------
    ParameterError
        From :func:`load_rule`, or for ``rule_params`` that is not a JSON object.
    """
    spec = values["rule"]
    if spec == "builtin:behavior":
        params: dict[str, Any] = {
            "behavior": values["behavior"], "min_probability": values["min_probability"],
            "min_frames": values["min_frames"], "refractory_s": values["refractory"]}
    elif spec == "builtin:region":
        params = {"keypoint": values["keypoint"], "region": values["region"],
                  "min_frames": values["min_frames"]}
    else:
        problem = rule_params_problem(values.get("rule_params", ""))
        if problem:
            raise ParameterError(f"rule_params = {values['rule_params']!r}: {problem}")
        params = json.loads(values.get("rule_params") or "{}")
    return load_rule(spec, params)


def rule_params_problem(text: str) -> str | None:
    """Check a ``rule_params`` value: empty or a JSON object."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        return f"must be a JSON object of keyword arguments ({exc})"
    return None if isinstance(value, dict) else "must be a JSON object, e.g. {\"height\": 0.05}"


# --------------------------------------------------------------------------- running rules


@dataclass(frozen=True)
class StimulusSummary:
    """What a :class:`StimulusRunner` has done.

    Attributes
    ----------
    frames:
        Frames submitted.
    processed:
        Frames the rule was called on.
    dropped:
        Frames dropped from a full queue (the oldest go first).
    errors:
        Exceptions raised by the rule, or by the trigger callback (threaded mode).
    triggers, on, off:
        Triggers fired, and of those how many turned the stimulus on / off.
    latency_p50_ms, latency_p99_ms:
        Trigger time minus the source frame's stamp over the last ``window`` triggers.
    """

    frames: int
    processed: int
    dropped: int
    errors: int
    triggers: int
    on: int
    off: int
    latency_p50_ms: float
    latency_p99_ms: float

    def line(self) -> str:
        """One log line."""
        return (f"{self.frames} frames ({self.processed} processed, {self.dropped} dropped, "
                f"{self.errors} errors), {self.triggers} triggers ({self.on} on, "
                f"{self.off} off), latency p50 {self.latency_p50_ms:.1f} ms "
                f"p99 {self.latency_p99_ms:.1f} ms")


TriggerCallback = Callable[[Trigger, int], None]


@dataclass
class _Counts:
    frames: int = 0
    processed: int = 0
    dropped: int = 0
    errors: int = 0
    on: int = 0
    off: int = 0
    last_error: str = ""
    latency: StreamStats = field(default_factory=StreamStats)


class StimulusRunner:
    """Run a rule off the caller's thread; hand each trigger and its latency to a callback.

    ``submit_pose`` / ``submit_behavior`` only enqueue (a short lock, never a wait for
    the rule): a full queue drops its oldest frame and counts it. A worker thread calls
    the rule in order and, for each trigger, ``on_trigger(trigger, latency_ns)`` with
    ``latency_ns = clock() - trigger.stamp_ns``. In threaded mode an exception from the
    rule or the callback is counted and passed to ``on_error`` (the worker goes on); with
    ``threaded=False`` everything runs in the caller's thread and exceptions propagate
    (offline analysis, tests).

    Parameters
    ----------
    rule:
        The rule; only the worker calls it.
    on_trigger:
        Called with each trigger and its latency in ns (the node publishes both).
    queue_size:
        Frames held while the rule is busy (>= 1).
    threaded:
        False: run the rule in ``submit_*`` itself.
    clock:
        Now in ns on the stamps' clock (the node passes its ROS clock; default wall time).
    on_error:
        Called with each exception caught in threaded mode.
    window:
        Triggers over which the latency percentiles are taken.
    """

    def __init__(self, rule: Rule, on_trigger: TriggerCallback, *, queue_size: int = 4,
                 threaded: bool = True, clock: Callable[[], int] = time.time_ns,
                 on_error: Callable[[BaseException], None] | None = None,
                 window: int = 300) -> None:
        if problem := _interface_problem(rule):
            raise ParameterError(f"StimulusRunner: {type(rule).__name__} does not implement "
                                 f"the Rule interface: {problem}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ParameterError(f"StimulusRunner: invalid parameters:\n"
                                 f"  queue_size = {queue_size!r}: must be an integer >= 1")
        self.rule = rule
        self.on_trigger = on_trigger
        self.on_error = on_error
        self.clock = clock
        self.queue_size = queue_size
        self.threaded = threaded
        self._counts = _Counts(latency=StreamStats(window))
        self._queue: deque[tuple[Callable[[Any], Trigger | None], Any]] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._work, name="stimulus-rule",
                                            daemon=True)
            self._thread.start()

    # -- the caller's side

    def submit_pose(self, frame: PoseFrame) -> None:
        """Hand a pose to the rule (enqueued in threaded mode)."""
        self._submit(self.rule.on_pose, frame)

    def submit_behavior(self, frame: BehaviorFrame) -> None:
        """Hand a behaviour estimate to the rule (enqueued in threaded mode)."""
        self._submit(self.rule.on_behavior, frame)

    def submit(self, frame: Frame) -> None:
        """:meth:`submit_pose` or :meth:`submit_behavior`, by the frame's type."""
        if isinstance(frame, PoseFrame):
            self.submit_pose(frame)
        else:
            self.submit_behavior(frame)

    def reset(self) -> None:
        """Discard queued frames and reset the rule (in the worker, after its current frame)."""
        with self._cond:
            self._check_open()
            self._queue.clear()
            self._queue.append((lambda _: self._reset_rule(), None))
            self._cond.notify_all()
        if not self.threaded:
            self._drain()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued frame is processed; False if ``timeout`` s passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def summary(self) -> StimulusSummary:
        """Counts and latency percentiles so far (safe from any thread)."""
        with self._cond:
            c = self._counts
            latency = c.latency.summary()
            return StimulusSummary(c.frames, c.processed, c.dropped, c.errors, c.on + c.off,
                                   c.on, c.off, latency.latency_p50_ms, latency.latency_p99_ms)

    @property
    def last_error(self) -> str:
        """The newest exception caught in threaded mode, as ``Type: message`` ('' if none)."""
        with self._cond:
            return self._counts.last_error

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the worker after its current frame and join it; queued frames are dropped.

        Call :meth:`flush` first to process them. Idempotent; ``submit_*`` after close
        raises ``RuntimeError``.
        """
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> StimulusRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("StimulusRunner is closed")

    def _submit(self, method: Callable[[Any], Trigger | None], frame: Frame) -> None:
        with self._cond:
            self._check_open()
            self._counts.frames += 1
            if len(self._queue) >= self.queue_size:
                self._queue.popleft()
                self._counts.dropped += 1
            self._queue.append((method, frame))
            self._cond.notify_all()
        if not self.threaded:
            self._drain()

    def _reset_rule(self) -> None:
        self.rule.reset()

    def _drain(self) -> None:
        """Synchronous mode: process what is queued now, letting exceptions through."""
        while True:
            with self._cond:
                if not self._queue:
                    return
                method, frame = self._queue.popleft()
            try:
                self._process(method, frame)
            except Exception as exc:
                with self._cond:
                    self._counts.errors += 1
                    self._counts.last_error = f"{type(exc).__name__}: {exc}"
                raise

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                method, frame = self._queue.popleft()
                self._busy = True
            try:
                self._process(method, frame)
            except Exception as exc:
                with self._cond:
                    self._counts.errors += 1
                    self._counts.last_error = f"{type(exc).__name__}: {exc}"
                if self.on_error is not None:
                    # A failing error handler must not stop the worker.
                    with contextlib.suppress(Exception):
                        self.on_error(exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _process(self, method: Callable[[Any], Trigger | None], frame: Frame | None) -> None:
        if frame is not None:
            with self._cond:
                self._counts.processed += 1
        trigger = method(frame)
        if trigger is None:
            return
        if not isinstance(trigger, Trigger):
            raise TypeError(f"{type(self.rule).__name__} returned {trigger!r}, "
                            "not a Trigger or None")
        now = self.clock()
        latency = now - trigger.stamp_ns
        with self._cond:
            self._counts.latency.add(trigger.stamp_ns, now)
            if trigger.value:
                self._counts.on += 1
            else:
                self._counts.off += 1
        self.on_trigger(trigger, latency)


def replay(rule: Rule, frames: Iterable[Frame]) -> list[Trigger]:
    """Offline: run ``rule`` over ``frames`` (poses and behaviour, in order); its triggers."""
    out: list[Trigger] = []
    with StimulusRunner(rule, lambda t, _: out.append(t), threaded=False) as runner:
        for frame in frames:
            runner.submit(frame)
    return out
