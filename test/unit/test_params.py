"""Tests of mouse_lifter_ros.core.params and of the shipped config/params.yaml."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from mouse_lifter_ros.core import node_params
from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.core.graph import load_nodes
from mouse_lifter_ros.core.params import (
    ParamSpec,
    at_least,
    one_of,
    rectangle_or_zeros,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]
PARAMS_YAML = ROOT / "config" / "params.yaml"
GRAPH_YAML = ROOT / "config" / "graph.yaml"

SPECS = (
    ParamSpec("count", 3, "an int", at_least(0), ">= 0"),
    ParamSpec("gain", 1.5, "a float", at_least(0.0, strict=True), "> 0"),
    ParamSpec("mode", "fast", "a string", one_of("fast", "slow"), "fast or slow"),
    ParamSpec("enabled", False, "a bool"),
    ParamSpec("roi", [0, 0, 0, 0], "a rectangle", rectangle_or_zeros, "x, y, w, h", kind=int),
    ParamSpec("weights", [1.0], "floats", kind=float),
    ParamSpec("names", ["a"], "strings", kind=str),
)


def problem_lines(exc: pytest.ExceptionInfo[ParameterError]) -> list[str]:
    """The per-parameter lines of a ParameterError message (after the first line)."""
    return [line.strip() for line in str(exc.value).splitlines()[1:]]


def test_defaults_when_nothing_given() -> None:
    out = validate(SPECS, {})
    assert out == {spec.name: spec.default for spec in SPECS}
    for spec in SPECS:
        assert type(out[spec.name]) is spec.type


def test_int_and_float_coercion() -> None:
    out = validate(SPECS, {"count": 7.0, "gain": 2})
    assert out["count"] == 7 and type(out["count"]) is int
    assert out["gain"] == 2.0 and type(out["gain"]) is float


@pytest.mark.parametrize("bad", [True, False])
def test_bool_is_not_an_int_nor_a_float(bad: bool) -> None:
    with pytest.raises(ParameterError, match="count") as exc:
        validate(SPECS, {"count": bad})
    assert "must be an integer" in str(exc.value)
    with pytest.raises(ParameterError, match="gain") as exc:
        validate(SPECS, {"gain": bad})
    assert "must be a number" in str(exc.value)


def test_non_integral_float_is_not_an_int() -> None:
    with pytest.raises(ParameterError) as exc:
        validate(SPECS, {"count": 2.5})
    assert "count = 2.5" in str(exc.value) and "must be an integer" in str(exc.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [("count", "3"), ("gain", "1.0"), ("mode", 1), ("enabled", 1), ("enabled", "true"),
     ("roi", 5), ("weights", "1.0")],
)
def test_wrong_types_are_rejected(name: str, value: Any) -> None:
    with pytest.raises(ParameterError) as exc:
        validate(SPECS, {name: value})
    assert f"{name} = {value!r}" in str(exc.value)


def test_checks_run_after_coercion() -> None:
    assert validate(SPECS, {"count": 0})["count"] == 0
    with pytest.raises(ParameterError, match=r"count = -1: must be >= 0"):
        validate(SPECS, {"count": -1})
    with pytest.raises(ParameterError, match=r"gain = 0: must be > 0"):
        validate(SPECS, {"gain": 0})
    with pytest.raises(ParameterError, match="gain = nan"):
        validate(SPECS, {"gain": float("nan")})
    with pytest.raises(ParameterError, match="must be one of fast, slow"):
        validate(SPECS, {"mode": "medium"})


def test_every_problem_in_one_message() -> None:
    values = {"count": -4, "gain": -0.25, "mode": "turbo", "enabled": True}
    with pytest.raises(ParameterError) as exc:
        validate(SPECS, values, owner="my_node")
    text = str(exc.value)
    assert text.startswith("my_node")
    lines = problem_lines(exc)
    assert len(lines) == 3, text
    for name, allowed in (("count", ">= 0"), ("gain", "> 0"), ("mode", "fast, slow")):
        [line] = [line for line in lines if line.startswith(f"{name} =")]
        assert repr(values[name]) in line
        assert allowed in line
    assert "enabled" not in text  # a valid value is not reported


def test_unknown_names_are_reported_with_the_bad_values() -> None:
    with pytest.raises(ParameterError) as exc:
        validate(SPECS, {"cuont": 3, "gian": 1.0, "count": -1})
    text = str(exc.value)
    lines = problem_lines(exc)
    assert len(lines) == 3, text
    for typo in ("cuont", "gian"):
        [line] = [line for line in lines if line.startswith(f"{typo}:")]
        assert "unknown parameter" in line
        assert "count" in line and "gain" in line  # the known names are listed
    assert any(line.startswith("count = -1") for line in lines)


def test_int_list_parameters() -> None:
    out = validate(SPECS, {"roi": (1.0, 2, 30, 40)})
    assert out["roi"] == [1, 2, 30, 40]
    assert all(type(v) is int for v in out["roi"])
    assert validate(SPECS, {"roi": [0, 0, 0, 0]})["roi"] == [0, 0, 0, 0]
    for bad in ([1, 2, 3, 4.5], [1, True, 3, 4], [1, "2", 3, 4]):
        with pytest.raises(ParameterError, match="roi") as exc:
            validate(SPECS, {"roi": bad})
        assert "integer" in str(exc.value)
    for bad in ([1, 2, 3], [-1, 0, 10, 10], [0, 0, 0, 10]):
        with pytest.raises(ParameterError, match=re.escape(f"roi = {bad!r}")):
            validate(SPECS, {"roi": bad})


def test_float_and_str_list_parameters() -> None:
    out = validate(SPECS, {"weights": [1, 2.5], "names": ["x", "y"]})
    assert out["weights"] == [1.0, 2.5] and all(type(v) is float for v in out["weights"])
    assert out["names"] == ["x", "y"]
    with pytest.raises(ParameterError, match="weights"):
        validate(SPECS, {"weights": [1.0, False]})
    with pytest.raises(ParameterError, match="names"):
        validate(SPECS, {"names": ["x", 1]})


def test_rectangle_or_zeros() -> None:
    assert rectangle_or_zeros([0, 0, 0, 0]) is None
    assert rectangle_or_zeros([0, 0, 1, 1]) is None
    assert rectangle_or_zeros([5, 6, 7, 8]) is None
    for bad in ([0, 0, 0], [0, 0, 0, 0, 0], [-1, 0, 5, 5], [0, 0, 5, 0], [0, 0, 0, 5]):
        assert rectangle_or_zeros(bad), bad


# --- the shipped config/params.yaml -------------------------------------------------


def shipped_sections() -> dict[str, dict[str, Any]]:
    """``{node name: ros__parameters}`` of config/params.yaml."""
    raw = yaml.safe_load(PARAMS_YAML.read_text(encoding="utf-8"))
    out = {}
    for key, section in raw.items():
        assert key.startswith("/**/"), key
        out[key.removeprefix("/**/")] = section["ros__parameters"]
    return out


def executables() -> dict[str, str]:
    """Node name -> executable, from config/graph.yaml (every node, in a graph or not)."""
    return {n.name: n.executable for n in load_nodes(GRAPH_YAML).values()}


def test_params_yaml_sections_are_graph_nodes() -> None:
    sections, exe = shipped_sections(), executables()
    assert sections
    assert set(sections) == set(exe), "params.yaml sections vs config/graph.yaml nodes"
    for node in sections:
        assert exe[node] in node_params.NODE_PARAMS, exe[node]


@pytest.mark.parametrize("node", sorted(shipped_sections()))
def test_params_yaml_names_every_parameter_and_no_other(node: str) -> None:
    values = shipped_sections()[node]
    known = {spec.name for spec in node_params.NODE_PARAMS[executables()[node]]}
    assert set(values) - known == set(), f"unknown parameters in params.yaml for {node}"
    assert known - set(values) == set(), f"parameters of {node} missing from params.yaml"


#: Parameters without a sensible default: the shipped file leaves them empty, and an
#: empty one is refused, naming it (the bag to replay, the rig's arena calibration; the
#: keypoint node's arena_file is optional, and has no check).
REQUIRED = {"bag": "/data/some_bag", "arena_file": "/rig/arena.yaml"}


@pytest.mark.parametrize("node", sorted(shipped_sections()))
def test_params_yaml_values_are_valid(node: str) -> None:
    values = dict(shipped_sections()[node])
    node_specs = node_params.NODE_PARAMS[executables()[node]]
    required = [s.name for s in node_specs if s.name in REQUIRED and s.check is not None]
    if required:
        assert all(values[name] == "" for name in required)
        with pytest.raises(ParameterError) as exc:
            validate(node_specs, values, owner=node)
        lines = problem_lines(exc)
        assert sorted(line.split(" = ")[0] for line in lines) == sorted(required), lines
        values.update({name: REQUIRED[name] for name in required})
    out = validate(node_specs, values, owner=node)
    assert set(out) == set(values)


def test_node_specs_defaults_are_valid_except_the_required() -> None:
    for exe, node_specs in node_params.NODE_PARAMS.items():
        names = [spec.name for spec in node_specs]
        assert len(names) == len(set(names)), f"{exe}: duplicate parameter names"
        for spec in node_specs:
            assert spec.description, f"{exe}.{spec.name}: no description"
            if spec.check is not None and spec.name not in REQUIRED:
                assert spec.check(spec.default) is None, f"{exe}.{spec.name}"
