"""Tests of mouse_lifter_ros.core.stimulus: rules, regions, loading a lab's rule, the runner."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mouse_lifter_ros.core.errors import InputError, ParameterError
from mouse_lifter_ros.core.node_params import STIMULUS_PARAMS
from mouse_lifter_ros.core.params import validate
from mouse_lifter_ros.core.stimulus.builtin_rules import BehaviorRule, RegionRule
from mouse_lifter_ros.core.stimulus.interface import BehaviorFrame, PoseFrame, Rule, Trigger
from mouse_lifter_ros.core.stimulus.loader import load_rule, rule_from_params
from mouse_lifter_ros.core.stimulus.regions import Circle, Polygon, Rectangle, parse_region
from mouse_lifter_ros.core.stimulus.runner import StimulusRunner, replay

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "mouse_lifter_ros" / "examples" / "nose_height_rule.py"
MS = 1_000_000
T0 = 1_700_000_000 * 1_000_000_000
CLASSES = ("locomotion", "rearing", "grooming", "stationary")
NAMES = ("nose", "spine_center", "tail_base")


def behavior(i: int, p_rearing: float) -> BehaviorFrame:
    """Behaviour frame ``i`` (33 ms apart) with the given rearing probability."""
    rest = (1.0 - p_rearing) / 3
    probs = [rest, p_rearing, rest, rest]
    return BehaviorFrame(T0 + i * 33 * MS, CLASSES[int(np.argmax(probs))], CLASSES,
                         np.array(probs))


def pose(i: int, xyz: Sequence[float], *, valid: bool = True, key: str = "nose") -> PoseFrame:
    """Pose frame ``i`` with keypoint ``key`` at ``xyz`` and the others at the origin."""
    positions = np.zeros((len(NAMES), 3))
    positions[NAMES.index(key)] = xyz
    flags = np.ones(len(NAMES), dtype=bool)
    flags[NAMES.index(key)] = valid
    return PoseFrame(T0 + i * 33 * MS, NAMES, positions, flags, np.ones(len(NAMES)))


def fired(triggers: list[Trigger]) -> list[tuple[int, bool]]:
    """(frame index, value) of each trigger, from its stamp."""
    return [((t.stamp_ns - T0) // (33 * MS), t.value) for t in triggers]


def problem_lines(exc: pytest.ExceptionInfo[ParameterError]) -> list[str]:
    return [line.strip() for line in str(exc.value).splitlines()[1:]]


# ----------------------------------------------------------------------------- frames


def test_frames_check_shapes_and_name_lookups() -> None:
    with pytest.raises(InputError, match=r"positions \(K, 3\)"):
        PoseFrame(T0, NAMES, np.zeros((2, 3)), np.ones(3, bool), np.ones(3))
    with pytest.raises(InputError, match="probabilities"):
        BehaviorFrame(T0, "rearing", CLASSES, np.array([0.5, 0.5]))
    frame = pose(0, (0.1, 0.2, 0.03), valid=False)
    assert frame.position("nose").tolist() == [0.1, 0.2, 0.03]
    assert not frame.is_valid("nose") and frame.is_valid("tail_base")
    with pytest.raises(InputError, match=r"no keypoint 'ear'.*nose, spine_center"):
        frame.index("ear")
    with pytest.raises(InputError, match=r"'flying'.*locomotion, rearing"):
        behavior(0, 0.5).probability("flying")


# ----------------------------------------------------------------------------- BehaviorRule


def test_behavior_rule_fires_once_on_after_k_frames_and_once_off() -> None:
    probs = [0.1, 0.7, 0.65, 0.2,  # flicker of 2 frames: nothing
             0.1, 0.8, 0.9, 0.95, 0.9, 0.7, 0.61, 0.5, 0.3, 0.1]  # bout of 7 from frame 5
    triggers = replay(BehaviorRule("rearing", 0.6, 3), [
        behavior(i, p) for i, p in enumerate(probs)])
    assert fired(triggers) == [(7, True), (11, False)]
    assert all(t.rule == "behavior:rearing" for t in triggers)
    assert "for 3 frames" in triggers[0].reason and "0.50 <= 0.6" in triggers[1].reason


def test_behavior_rule_threshold_is_strict_and_k1_fires_at_once() -> None:
    rule = BehaviorRule("rearing", 0.6, 1)
    assert rule.on_behavior(behavior(0, 0.6)) is None  # not above p
    on = rule.on_behavior(behavior(1, 0.61))
    assert on is not None and on.value and on.stamp_ns == T0 + 33 * MS


def test_behavior_rule_refractory_period_counts_from_the_off_trigger() -> None:
    # Bouts at frames 0-3, 6-9 (starts 99 ms after the off at 4) and 40-43.
    high = {*range(4), *range(6, 10), *range(40, 44)}
    frames = [behavior(i, 0.9 if i in high else 0.1) for i in range(50)]
    rule = BehaviorRule("rearing", 0.6, 2, refractory_s=0.5)
    assert fired(replay(rule, frames)) == [(1, True), (4, False), (41, True), (44, False)]
    # A bout still holding when the period ends fires then: off at 4 + 0.5 s = frame 19.2.
    long_bout = [behavior(i, 0.9 if i < 4 or i >= 6 else 0.1) for i in range(30)]
    rule = BehaviorRule("rearing", 0.6, 2, refractory_s=0.5)
    assert fired(replay(rule, long_bout)) == [(1, True), (4, False), (20, True)]


def test_behavior_rule_duplicates_and_stamps_going_back() -> None:
    rule = BehaviorRule("rearing", 0.5, 2)
    assert rule.on_behavior(behavior(0, 0.9)) is None
    assert rule.on_behavior(behavior(0, 0.9)) is None  # duplicate stamp: not a 2nd frame
    on = rule.on_behavior(behavior(1, 0.9))
    assert on is not None and on.value
    back = rule.on_behavior(behavior(0, 0.9))  # a bag looped: off and a fresh start
    assert back is not None and not back.value and "went back" in back.reason
    assert not rule.active and rule.streak == 0
    assert rule.on_behavior(behavior(1, 0.9)) is None  # the streak starts again
    assert rule.on_behavior(behavior(2, 0.9)) is not None


def test_behavior_rule_unknown_class_is_an_input_error() -> None:
    with pytest.raises(InputError, match="'sniffing' is not one of"):
        BehaviorRule("sniffing", 0.5, 1).on_behavior(behavior(0, 0.9))


def test_behavior_rule_invalid_parameters_list_every_problem() -> None:
    with pytest.raises(ParameterError) as exc:
        BehaviorRule(" ", 1.0, 0, refractory_s=-1.0)
    assert str(exc.value).startswith("BehaviorRule: invalid parameters")
    assert problem_lines(exc) == [
        "behavior = ' ': must not be empty",
        "min_probability = 1.0: must be >= 0 and < 1",
        "min_frames = 0: must be >= 1",
        "refractory_s = -1.0: must be >= 0",
    ]
    with pytest.raises(ParameterError, match=r"min_frames = 2.5: must be an integer"):
        BehaviorRule("rearing", 0.5, 2.5)  # type: ignore[arg-type]
    assert BehaviorRule("rearing", 0, 2.0).min_frames == 2  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- regions


@pytest.mark.parametrize(
    ("region", "kind"),
    [((0.0, 0.0, 0.1), Circle),
     ([0.1, 0.1, -0.1, -0.1], Rectangle),  # corners in any order
     ([(-0.1, -0.1), (0.1, -0.1), (0.1, 0.1), (-0.1, 0.1)], Polygon),
     ([-0.1, -0.1, 0.1, -0.1, 0.1, 0.1, -0.1, 0.1], Polygon),
     (np.array([[-0.1, -0.1], [0.1, -0.1], [0.1, 0.1], [-0.1, 0.1]]), Polygon)],
)
def test_region_enter_and_leave(region: Any, kind: type) -> None:
    rule = RegionRule("nose", region)
    assert isinstance(rule.region, kind)
    xs = [-0.3, -0.2, -0.05, 0.0, 0.05, 0.2, 0.3, 0.0]  # in at 2, out at 5, in at 7
    triggers = replay(rule, [pose(i, (x, 0.0, 0.02)) for i, x in enumerate(xs)])
    assert fired(triggers) == [(2, True), (5, False), (7, True)]
    assert "nose entered" in triggers[0].reason and "nose left" in triggers[1].reason


def test_region_polygon_concave_and_boundary_distance() -> None:
    # An L shape: the notch (0.15, 0.15) is outside though inside the bounding box.
    ell = parse_region([0, 0, 0.2, 0, 0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0, 0.2])
    assert isinstance(ell, Polygon)
    assert ell.signed_distance(0.05, 0.15) == pytest.approx(-0.05)
    assert ell.signed_distance(0.15, 0.15) == pytest.approx(0.05)
    assert ell.signed_distance(0.3, 0.05) == pytest.approx(0.1)
    assert Rectangle(0, 0, 1, 1).signed_distance(2, 2) == pytest.approx(2 ** 0.5)
    assert Rectangle(0, 0, 1, 1).signed_distance(0.5, 0.2) == pytest.approx(-0.2)
    assert Circle(1, 1, 0.5).signed_distance(1, 1) == pytest.approx(-0.5)


def test_region_min_frames_debounces_both_edges() -> None:
    inside = [0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 1]
    frames = [pose(i, (0.0 if v else 0.5, 0.0, 0.0)) for i, v in enumerate(inside)]
    assert fired(replay(RegionRule("nose", (0, 0, 0.1), min_frames=3), frames)) == [
        (5, True), (10, False)]


def test_region_margin_is_spatial_hysteresis() -> None:
    xs = [0.2, 0.099, 0.105, 0.095, 0.11, 0.125]  # jitter on the boundary of r = 0.1
    frames = [pose(i, (x, 0.0, 0.0)) for i, x in enumerate(xs)]
    assert fired(replay(RegionRule("nose", (0, 0, 0.1)), frames)) == [
        (1, True), (2, False), (3, True), (4, False)]
    assert fired(replay(RegionRule("nose", (0, 0, 0.1), margin=0.02), frames)) == [
        (1, True), (5, False)]


def test_region_skips_filled_in_and_non_finite_keypoints() -> None:
    frames = [pose(0, (0, 0, 0), valid=False), pose(1, (0.5, 0, 0)), pose(2, (0, 0, 0)),
              pose(3, (0.5, 0, 0), valid=False), pose(4, (np.nan, 0, 0)), pose(5, (0.5, 0, 0))]
    assert fired(replay(RegionRule("nose", (0, 0, 0.1)), frames)) == [(2, True), (5, False)]
    loose = RegionRule("nose", (0, 0, 0.1), require_valid=False)
    assert fired(replay(loose, frames)) == [(0, True), (1, False), (2, True), (3, False)]


def test_region_rule_missing_keypoint_and_stamps_going_back() -> None:
    rule = RegionRule("left_ear", (0, 0, 0.1))
    with pytest.raises(InputError, match="no keypoint 'left_ear'"):
        rule.on_pose(pose(0, (0, 0, 0)))
    rule = RegionRule("nose", (0, 0, 0.1))
    assert rule.on_pose(pose(5, (0, 0, 0))) is not None and rule.inside
    back = rule.on_pose(pose(1, (0, 0, 0)))
    assert back is not None and not back.value and not rule.inside


@pytest.mark.parametrize(
    ("value", "message"),
    [([1.0, 2.0], "has 2 numbers"), ([0, 0, 0], "radius must be > 0"),
     ([0, 0, 0, 1], "corners must differ"), ([0, 0, 1, 1, 2, 2], "must enclose an area"),
     ([0, 0, 1, 0, 1, 1, 0], "has 7 numbers"), ([(0, 0), (1, 1)], ">= 3 vertices"),
     ([(0, 0, 0), (1, 0, 0), (1, 1, 0)], r"each be \(x, y\)"), ("circle", "must be"),
     ([0, 0, float("inf")], "finite"), ([0, 0, True], "numbers")],
)
def test_parse_region_rejects(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_region(value)


def test_region_rule_invalid_parameters_list_every_problem() -> None:
    with pytest.raises(ParameterError) as exc:
        RegionRule("", [1.0, 2.0], min_frames=0, margin=-0.01, require_valid=1)  # type: ignore[arg-type]
    lines = problem_lines(exc)
    assert [line.split(" =")[0] for line in lines] == [
        "keypoint", "min_frames", "margin", "require_valid", "region"]
    assert "region = [1.0, 2.0]: has 2 numbers; must be [cx, cy, r] (circle)" in lines[-1]
    assert "require_valid = 1: must be true or false" in lines


# ----------------------------------------------------------------------------- loading


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


LAB_MODULE = """
from mouse_lifter_ros.core.stimulus.interface import Rule, Trigger

class Always(Rule):
    def __init__(self, tag="x"):
        self.tag = tag
    def on_pose(self, frame):
        return Trigger(frame.stamp_ns, self.tag, True)

class DuckTyped:  # no base class: all three methods needed
    def on_pose(self, frame):
        return None
    def on_behavior(self, frame):
        return None
    def reset(self):
        pass

class NoReset:
    def on_pose(self, frame):
        return None

class DoesNothing(Rule):
    pass

class Picky(Rule):
    def __init__(self, level):
        if level < 0:
            from mouse_lifter_ros.core.errors import ParameterError
            raise ParameterError("Picky: level must be >= 0")
    def on_pose(self, frame):
        return None
"""


def test_load_builtin_rules() -> None:
    rule = load_rule("builtin:behavior", {"behavior": "grooming", "min_probability": 0.7,
                                          "min_frames": 5})
    assert isinstance(rule, BehaviorRule) and rule.min_frames == 5
    region = load_rule("builtin:region", {"keypoint": "nose", "region": [0, 0, 1, 1]})
    assert isinstance(region, RegionRule) and isinstance(region.region, Rectangle)
    assert isinstance(rule, Rule) and isinstance(region, Rule)


def test_load_rule_from_a_module_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "lab_rules_for_test.py", LAB_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    rule = load_rule("lab_rules_for_test:Always", {"tag": "lab"})
    assert replay(rule, [pose(0, (0, 0, 0))]) == [Trigger(T0, "lab", True)]
    duck = load_rule("lab_rules_for_test:DuckTyped", {})
    assert type(duck).__name__ == "DuckTyped" and isinstance(duck, Rule)


def test_load_rule_from_a_file(tmp_path: Path) -> None:
    path = write(tmp_path / "my rules.py", LAB_MODULE)
    rule = load_rule(f"{path}:Always", None)
    assert rule.on_pose(pose(0, (0, 0, 0))) == Trigger(T0, "x", True)


def test_the_example_rule_loads_from_its_file_and_fires() -> None:
    rule = load_rule(f"{EXAMPLE}:NoseHeightRule", {"min_height": 0.05, "min_frames": 3})
    zs = [0.02, 0.06, 0.07, 0.08, 0.09, 0.08, 0.04, 0.03]
    frames = [pose(i, (0, 0, z)) for i, z in enumerate(zs)]
    frames.insert(5, pose(5, (0, 0, 0.0), valid=False))  # occluded: ignored
    triggers = replay(rule, frames)
    assert fired(triggers) == [(3, True), (6, False)]
    assert triggers[0].rule == "nose_height" and "> 0.05 m" in triggers[0].reason
    with pytest.raises(ParameterError) as exc:
        load_rule(f"{EXAMPLE}:NoseHeightRule", {"min_height": -1, "min_frames": 0})
    assert str(exc.value).startswith(f"rule '{EXAMPLE}:NoseHeightRule': NoseHeightRule")
    assert "min_height = -1" in str(exc.value) and "min_frames = 0" in str(exc.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("behavior", "must be builtin:behavior, builtin:region, package.module:ClassName"),
     ("builtin:zone", r"unknown built-in rule \(known: builtin:behavior, builtin:region\)"),
     ("pkg.mod:", "must be"), ("not a module:Cls", "must be"),
     ("/no/such/dir/rules.py:Rule", "no such file /no/such/dir/rules.py"),
     ("no_such_module_xyz.rules:R", "cannot import no_such_module_xyz.rules: "
                                    "ModuleNotFoundError")],
)
def test_load_rule_bad_specs_are_named(spec: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message) as exc:
        load_rule(spec, {})
    assert str(exc.value).startswith(f"rule {spec!r}: ")


@pytest.mark.parametrize(
    ("attr", "params", "message"),
    [("Missing", {}, r"has no Missing \(classes it defines: Always, DoesNothing, DuckTyped, "
                     r"NoReset, Picky\)"),
     ("NoReset", {}, "NoReset does not implement the Rule interface: missing on_behavior, "
                     "reset"),
     ("DoesNothing", {}, "overrides neither on_pose nor on_behavior"),
     ("Always", {"colour": "red"}, r"Always cannot take the parameters \['colour'\].*tag="),
     ("Picky", {}, "missing a required argument: 'level'"),
     ("Picky", {"level": -1}, "Picky: level must be >= 0")],
)
def test_load_rule_bad_classes_are_named(tmp_path: Path, attr: str, params: dict[str, Any],
                                         message: str) -> None:
    path = write(tmp_path / "lab.py", LAB_MODULE)
    with pytest.raises(ParameterError, match=message) as exc:
        load_rule(f"{path}:{attr}", params)
    assert str(exc.value).startswith(f"rule '{path}:{attr}': ")


def test_a_function_named_as_a_rule_is_refused_before_it_runs(tmp_path: Path) -> None:
    """``os:system`` with a command as its parameter: refused, and the command never ran
    (the check comes before any call)."""
    marker = tmp_path / "ran"
    with pytest.raises(ParameterError, match="system is a builtin_function_or_method, not a "
                                             "class") as exc:
        load_rule("os:system", {"command": f"touch {marker}"})
    assert str(exc.value).startswith("rule 'os:system': ")
    path = write(tmp_path / "funcs.py", f"def make(**kw):\n    open({str(marker)!r}, 'w')\n")
    with pytest.raises(ParameterError, match="make is a function, not a class"):
        load_rule(f"{path}:make", {})
    assert not marker.exists()


def test_load_rule_reports_errors_inside_the_lab_file(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.py", "def on_pose(:\n")
    with pytest.raises(ParameterError, match=r"error while importing .*broken.py: SyntaxError"):
        load_rule(f"{path}:Rule", {})
    path = write(tmp_path / "raises.py", "import no_such_dependency_xyz\n")
    with pytest.raises(ParameterError, match=r"ModuleNotFoundError.*no_such_dependency_xyz"):
        load_rule(f"{path}:Rule", {})


# ----------------------------------------------------------------------------- parameters


def test_stimulus_params_defaults_select_the_behavior_rule() -> None:
    values = validate(STIMULUS_PARAMS, {}, owner="stimulus")
    assert values["rule"] == "builtin:behavior" and values["behavior"] == "rearing"
    assert values["min_probability"] == 0.6 and values["min_frames"] == 3
    rule = rule_from_params(values)
    assert isinstance(rule, BehaviorRule) and rule.min_probability == 0.6
    region = rule_from_params({**values, "rule": "builtin:region", "region": [0, 0, 0.2]})
    assert isinstance(region, RegionRule) and region.region == Circle(0, 0, 0.2)
    assert region.min_frames == 3 and region.keypoint == "spine_center"


def test_stimulus_params_lab_rule_gets_rule_params() -> None:
    values = validate(STIMULUS_PARAMS, {
        "rule": f"{EXAMPLE}:NoseHeightRule", "rule_params": '{"min_height": 0.08}'})
    rule = rule_from_params(values)
    assert type(rule).__name__ == "NoseHeightRule" and rule.min_height == 0.08  # type: ignore[attr-defined]


def test_stimulus_params_invalid_values_list_every_problem() -> None:
    bad = {"rule": "builtin:zone", "rule_params": "[1, 2]", "behavior": "",
           "min_probability": 1.5, "min_frames": 0, "refractory": -1.0, "keypoint": "",
           "region": [0.0, 0.0], "queue_size": 0}
    with pytest.raises(ParameterError) as exc:
        validate(STIMULUS_PARAMS, bad, owner="/stimulus")
    assert [line.split(" =")[0] for line in problem_lines(exc)] == list(bad)


# ----------------------------------------------------------------------------- the runner


class Gate(Rule):
    """Fires on every pose; the first call waits on ``release`` (a slow rule)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.seen: list[int] = []

    def on_pose(self, frame: PoseFrame) -> Trigger | None:
        self.entered.set()
        assert self.release.wait(10)
        self.seen.append(frame.stamp_ns)
        return Trigger(frame.stamp_ns, "gate", True)


def test_threaded_runner_never_blocks_and_counts_drops() -> None:
    rule = Gate()
    out: list[Trigger] = []
    runner = StimulusRunner(rule, lambda t, _: out.append(t), queue_size=4)
    try:
        runner.submit_pose(pose(0, (0, 0, 0)))
        assert rule.entered.wait(5)  # the worker is stuck in the rule on frame 0
        start = time.perf_counter()
        for i in range(1, 201):
            runner.submit_pose(pose(i, (0, 0, 0)))
        elapsed = time.perf_counter() - start
        assert elapsed < 0.5, f"200 submits took {elapsed:.3f} s"
        s = runner.summary()
        assert (s.frames, s.dropped, s.processed) == (201, 196, 1)
        rule.release.set()
        assert runner.flush(5)
        # The newest frames survive: 0 (in the rule) then 197..200.
        assert [(t - T0) // (33 * MS) for t in rule.seen] == [0, 197, 198, 199, 200]
        assert len(out) == 5 and runner.summary().processed == 5
    finally:
        rule.release.set()
        runner.close()


class Sleepy(Rule):
    """A rule that sleeps (breaking the contract) on every pose."""

    def on_pose(self, frame: PoseFrame) -> Trigger | None:
        time.sleep(0.05)
        return None


def test_threaded_runner_with_a_sleeping_rule_returns_at_once() -> None:
    with StimulusRunner(Sleepy(), lambda t, _: None, queue_size=2) as runner:
        start = time.perf_counter()
        for i in range(100):
            runner.submit_pose(pose(i, (0, 0, 0)))
        assert time.perf_counter() - start < 0.5  # 100 x 50 ms in the caller would be 5 s
        assert runner.summary().dropped >= 100 - 2 - 2
    # close() returned after the frame in progress: the queued ones were not processed
    assert runner.summary().processed <= 3


def test_latency_with_an_injected_clock() -> None:
    now = [0]
    got: list[tuple[bool, int]] = []
    runner = StimulusRunner(BehaviorRule("rearing", 0.5, 1), lambda t, lat: got.append(
        (t.value, lat)), threaded=False, clock=lambda: now[0])
    latencies_ms = [3, 5, 4, 20, 6, 2]
    for k, lat in enumerate(latencies_ms):  # alternately on and off: one trigger a frame
        frame = behavior(k, 0.9 if k % 2 == 0 else 0.1)
        now[0] = frame.stamp_ns + lat * MS
        runner.submit_behavior(frame)
    assert got == [(k % 2 == 0, lat * MS) for k, lat in enumerate(latencies_ms)]
    s = runner.summary()
    assert (s.triggers, s.on, s.off, s.processed, s.dropped) == (6, 3, 3, 6, 0)
    assert s.latency_p50_ms == pytest.approx(4.5)
    assert s.latency_p99_ms == pytest.approx(float(np.percentile(latencies_ms, 99)))
    assert "6 triggers (3 on, 3 off)" in s.line() and "p50 4.5 ms" in s.line()


def test_threaded_runner_latency_and_order() -> None:
    stamps: list[int] = []
    with StimulusRunner(BehaviorRule("rearing", 0.5, 1), lambda t, lat: stamps.append(lat),
                        clock=lambda: T0 + 10**9, queue_size=100) as runner:
        for k in range(10):
            runner.submit(behavior(k, 0.9 if k % 2 == 0 else 0.1))
        assert runner.flush(5)
    assert stamps == [10**9 - k * 33 * MS for k in range(10)]


class Faulty(Rule):
    def on_pose(self, frame: PoseFrame) -> Trigger | None:
        if frame.position("nose")[0] < 0:
            raise RuntimeError("negative x")
        return Trigger(frame.stamp_ns, "faulty", True)


def test_threaded_runner_survives_rule_errors_and_reports_them() -> None:
    errors: list[BaseException] = []
    out: list[Trigger] = []
    with StimulusRunner(Faulty(), lambda t, _: out.append(t), on_error=errors.append,
                        queue_size=10) as runner:
        runner.submit_pose(pose(0, (-1, 0, 0)))
        runner.submit_pose(pose(1, (1, 0, 0)))
        assert runner.flush(5)
        assert runner.summary().errors == 1 and runner.last_error == "RuntimeError: negative x"
    assert [str(e) for e in errors] == ["negative x"] and len(out) == 1


def test_sync_runner_lets_errors_through_and_rejects_bad_returns() -> None:
    runner = StimulusRunner(Faulty(), lambda t, _: None, threaded=False)
    with pytest.raises(RuntimeError, match="negative x"):
        runner.submit_pose(pose(0, (-1, 0, 0)))
    assert runner.summary().errors == 1

    class Sloppy(Rule):
        def on_pose(self, frame: PoseFrame) -> Trigger | None:
            return True  # type: ignore[return-value]

    runner = StimulusRunner(Sloppy(), lambda t, _: None, threaded=False)
    with pytest.raises(TypeError, match="Sloppy returned True, not a Trigger or None"):
        runner.submit_pose(pose(0, (0, 0, 0)))


def test_runner_reset_and_close_are_safe() -> None:
    rule = BehaviorRule("rearing", 0.5, 2)
    runner = StimulusRunner(rule, lambda t, _: None)
    runner.submit_behavior(behavior(0, 0.9))
    assert runner.flush(5) and rule.streak == 1
    runner.reset()
    assert runner.flush(5) and rule.streak == 0
    thread = runner._thread
    assert thread is not None and thread.is_alive()
    runner.close()
    assert not thread.is_alive()
    runner.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        runner.submit_behavior(behavior(1, 0.9))


def test_runner_validates_its_arguments() -> None:
    with pytest.raises(ParameterError, match="queue_size = 0"):
        StimulusRunner(BehaviorRule("rearing", 0.5, 1), lambda t, _: None, queue_size=0)
    with pytest.raises(ParameterError, match="missing on_pose, on_behavior, reset"):
        StimulusRunner(object(), lambda t, _: None)  # type: ignore[arg-type]
