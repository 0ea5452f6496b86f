"""Loading a stimulus rule: a built-in one, or a lab's own class from a module or a file.

A *spec* names the rule: ``"builtin:behavior"``, ``"builtin:region"``,
``"package.module:ClassName"`` (an importable module) or ``"/path/to/file.py:ClassName"``
(a lab's file, imported as it is). :func:`rule_from_params` picks the spec and the
keyword arguments from ``stimulus_node``'s parameters.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.core.stimulus.builtin_rules import BUILTIN_RULES
from mouse_lifter_ros.core.stimulus.interface import Rule, interface_problem

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



def _lab_class(spec: str) -> Any:
    """The class that a well-formed, non-built-in ``spec`` names, imported and checked
    (:func:`load_rule`'s errors), before anything of it is called."""
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
    # Checked before anything is called: a spec naming a function (os:system) must
    # never run it with the lab's parameters.
    if not inspect.isclass(factory):
        raise ParameterError(f"rule {spec!r}: {attr} is a {type(factory).__name__}, "
                             "not a class; name a class implementing the Rule interface "
                             "(subclass mouse_lifter_ros.core.stimulus.interface.Rule)")
    if problem := interface_problem(factory):
        raise ParameterError(f"rule {spec!r}: {attr} does not implement the Rule "
                             f"interface: {problem}")
    return factory


def _check_arguments(spec: str, factory: Any, label: str, kwargs: Mapping[str, Any]) -> None:
    """:class:`ParameterError` when ``factory``'s signature (if it has one) cannot take
    ``kwargs``."""
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


def load_rule(spec: str, params: Mapping[str, Any] | None = None) -> Rule:
    """Create the rule that ``spec`` names, with keyword arguments ``params``.

    Parameters
    ----------
    spec:
        ``"builtin:behavior"`` (:class:`~.builtin_rules.BehaviorRule`),
        ``"builtin:region"`` (:class:`~.builtin_rules.RegionRule`),
        ``"package.module:ClassName"`` (an importable module) or
        ``"/path/to/file.py:ClassName"`` (a lab's file, imported as it is).
    params:
        Keyword arguments of the class's constructor.

    Raises
    ------
    ParameterError
        Naming ``spec``: a malformed spec, a module or file that cannot be imported
        (with the import's own error), a missing class, a class that does not implement
        :class:`~.interface.Rule` (which methods it lacks), or constructor arguments it
        rejects.
    """
    kwargs = dict(params or {})
    problem = spec_problem(spec)
    if problem:
        raise ParameterError(f"rule {spec!r}: {problem}")
    if spec in BUILTIN_RULES:
        factory: Any = BUILTIN_RULES[spec]
        label = factory.__name__
    else:
        factory = _lab_class(spec)
        label = spec.rpartition(":")[2]
    _check_arguments(spec, factory, label, kwargs)
    try:
        rule = factory(**kwargs)
    except ParameterError as exc:
        raise ParameterError(f"rule {spec!r}: {exc}") from exc
    except Exception as exc:
        raise ParameterError(f"rule {spec!r}: {label}(**{kwargs!r}) failed: "
                             f"{type(exc).__name__}: {exc}") from exc
    if problem := interface_problem(rule):
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

