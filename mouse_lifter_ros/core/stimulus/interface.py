"""The stimulus rule interface: what a rule sees (frames), returns (triggers) and is.

A lab's own rule subclasses :class:`Rule` (or just has its three methods) and works on
:class:`PoseFrame` and :class:`BehaviorFrame`; see the package docstring for the
contract (quick, single-threaded calls) and the units (stamps in ns, metres in the
arena frame).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError

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


#: The methods of :class:`Rule`.
RULE_METHODS = ("on_pose", "on_behavior", "reset")


def interface_problem(obj: Any) -> str | None:
    """What keeps ``obj`` (a class or an instance) from being a usable :class:`Rule`.

    None when it is one; otherwise one sentence: the methods it lacks, methods that are
    ``async``, or that it overrides neither ``on_pose`` nor ``on_behavior`` (so it could
    never fire).
    """
    missing = [m for m in RULE_METHODS if not callable(getattr(obj, m, None))]
    if missing:
        return (f"missing {', '.join(missing)} (subclass mouse_lifter_ros.core.stimulus."
                f"interface.Rule to inherit do-nothing defaults)")
    asynchronous = [m for m in RULE_METHODS if inspect.iscoroutinefunction(getattr(obj, m))]
    if asynchronous:
        return f"{', '.join(asynchronous)} must be plain methods, not async"
    cls = obj if inspect.isclass(obj) else type(obj)
    if (getattr(cls, "on_pose", None) is Rule.on_pose
            and getattr(cls, "on_behavior", None) is Rule.on_behavior):
        return "overrides neither on_pose nor on_behavior, so it can never fire"
    return None
