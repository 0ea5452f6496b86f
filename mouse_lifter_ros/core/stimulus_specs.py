"""The parameters of ``stimulus_node``, as data (to be merged into :mod:`.specs`).

The node passes the validated values to :func:`.stimulus.rule_from_params`, which picks
the rule and the parameters it takes.
"""

from __future__ import annotations

from mouse_lifter_ros.core.params import ParamSpec, at_least
from mouse_lifter_ros.core.stimulus import (
    SPEC_FORMS,
    region_problem,
    rule_params_problem,
    spec_problem,
)


def _non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _probability(value: float) -> str | None:
    return None if 0.0 <= value < 1.0 else "must be >= 0 and < 1"


STIMULUS_PARAMS = (
    ParamSpec("rule", "builtin:behavior", "The rule that fires triggers: a built-in one or "
              "a lab's own class (module path or .py file)", spec_problem, SPEC_FORMS),
    ParamSpec("rule_params", "", "A lab's own rule: its keyword arguments as a JSON object, "
              "e.g. {\"min_height\": 0.05}; empty = none", rule_params_problem,
              "empty or a JSON object"),
    ParamSpec("behavior", "rearing", "builtin:behavior: the behaviour class to watch (one of "
              "the classifier's classes)", _non_empty, "non-empty"),
    ParamSpec("min_probability", 0.6, "builtin:behavior: fires when the class's probability "
              "is above this", _probability, ">= 0 and < 1"),
    ParamSpec("min_frames", 3, "Consecutive frames the condition must hold before the "
              "stimulus turns on (builtin:region: also off)", at_least(1), ">= 1"),
    ParamSpec("refractory", 0.0, "builtin:behavior: seconds after an off trigger before the "
              "next on trigger", at_least(0.0), ">= 0"),
    ParamSpec("keypoint", "spine_center", "builtin:region: the keypoint that enters the region",
              _non_empty, "non-empty"),
    ParamSpec("region", [0.0, 0.0, 0.1], "builtin:region: arena floor region, metres: "
              "[cx, cy, r] circle, [x0, y0, x1, y1] rectangle or [x1, y1, x2, y2, x3, y3, ...] "
              "polygon (arena frame, origin at the centre)", region_problem,
              "3 (circle), 4 (rectangle) or an even number >= 6 (polygon) of finite numbers",
              kind=float),
    ParamSpec("queue_size", 4, "Frames held while the rule is busy; when full, the oldest "
              "is dropped (counted)", at_least(1), ">= 1"),
)
