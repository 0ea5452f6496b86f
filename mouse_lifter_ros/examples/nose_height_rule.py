"""A lab's own stimulus rule: the nose above a height for a few frames.

Select it in ``stimulus_node`` with the ``rule`` and ``rule_params`` parameters::

    rule: /path/to/nose_height_rule.py:NoseHeightRule
    rule_params: '{"min_height": 0.05, "min_frames": 3}'

or in Python with ``load_rule("/path/to/nose_height_rule.py:NoseHeightRule",
{"min_height": 0.05})``. It fires on (True) on the ``min_frames``-th consecutive pose
with the nose observed above ``min_height`` metres (z, above the floor), and off (False)
on the first observed pose below it. Poses where the nose was filled in by the body
model (``valid`` False) are skipped. ``on_pose`` does a few comparisons and returns:
a rule must never block (no I/O, no sleeping).
"""

from __future__ import annotations

import math

from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.core.stimulus.interface import PoseFrame, Rule, Trigger


class NoseHeightRule(Rule):
    """Stimulus on while the nose is above ``min_height`` m for ``min_frames`` poses."""

    def __init__(self, min_height: float = 0.05, min_frames: int = 3,
                 keypoint: str = "nose") -> None:
        problems = []
        if not (isinstance(min_height, int | float) and math.isfinite(min_height)
                and min_height > 0):
            problems.append(f"  min_height = {min_height!r}: must be > 0 (metres)")
        if isinstance(min_frames, bool) or not isinstance(min_frames, int) or min_frames < 1:
            problems.append(f"  min_frames = {min_frames!r}: must be an integer >= 1")
        if not keypoint:
            problems.append(f"  keypoint = {keypoint!r}: must not be empty")
        if problems:
            raise ParameterError("NoseHeightRule: invalid parameters:\n" + "\n".join(problems))
        self.min_height = float(min_height)
        self.min_frames = min_frames
        self.keypoint = keypoint
        self.reset()

    def reset(self) -> None:
        """Stimulus off, no streak."""
        self.on = False
        self.streak = 0

    def on_pose(self, frame: PoseFrame) -> Trigger | None:
        """Count poses with the nose up; fire when the stimulus should change."""
        if not frame.is_valid(self.keypoint):
            return None  # occluded: keep the current state
        z = float(frame.position(self.keypoint)[2])
        above = z > self.min_height
        self.streak = self.streak + 1 if above else 0
        if not self.on and self.streak >= self.min_frames:
            self.on = True
            return Trigger(frame.stamp_ns, "nose_height", True,
                           f"{self.keypoint} z={z:.3f} m > {self.min_height:g} m "
                           f"for {self.streak} poses")
        if self.on and not above:
            self.on = False
            return Trigger(frame.stamp_ns, "nose_height", False,
                           f"{self.keypoint} z={z:.3f} m <= {self.min_height:g} m")
        return None
