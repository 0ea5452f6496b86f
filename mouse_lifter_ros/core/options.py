"""Options defined once: each field of an options dataclass (``AnalysisOptions``,
``BatchOptions``) carries its :class:`Option` (flag, help, check, parser) in its metadata,
so that the command line, the dataclass default and the validation read one definition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


@dataclass(frozen=True)
class Option:
    """How one option (a field of an options dataclass) is given and checked: the single
    definition that the command line, the field's default and the options' check all
    use.

    Attributes
    ----------
    flag:
        The command-line flag (``--p-cutoff``); error messages name the option by it.
    help:
        One line for ``--help``, with units.
    valid:
        Predicate on the value; None: any value of the field's type.
    allowed:
        What is allowed, for the error when ``valid`` fails.
    parse:
        Converts the command-line text (a value it cannot convert is kept as text, and
        :func:`check_options` reports it with every other problem).
    metavar, group:
        ``--help`` details: the value's placeholder and the heading it is listed under.
    negated:
        A boolean given by a flag that turns it off (``--quiet`` for ``progress``).
    required:
        The command line requires it (the dataclass still has a default for the API).
    """

    flag: str
    help: str
    valid: Callable[[Any], bool] | None = None
    allowed: str = ""
    parse: Callable[[str], object] = str
    metavar: str | None = None
    group: str | None = None
    negated: bool = False
    required: bool = False


def option(default: Any, flag: str, help: str, **details: Any) -> Any:
    """A dataclass field whose :class:`Option` is in its metadata under ``"option"``:
    ``x: float = option(0.5, "--x", "what x is (unit)", valid=..., allowed=...)``."""
    return field(default=default, metadata={"option": Option(flag, help, **details)})


def parse_names(text: str) -> tuple[str, ...]:
    """``a, b,c`` -> ``("a", "b", "c")`` (a ``parse`` for name lists)."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


def boolean(value: object) -> bool:
    """True for a bool (a ``valid`` for switches)."""
    return isinstance(value, bool)


def none_or(valid: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """``valid``, also accepting None (an option whose None means "the default")."""
    return lambda v: v is None or valid(v)


def option_of(f: Field[Any]) -> Option:
    """The :class:`Option` of an options dataclass field."""
    return cast(Option, f.metadata["option"])


def option_problems(options: DataclassInstance) -> dict[str, str]:
    """Each field of ``options`` (an options dataclass instance) whose :class:`Option`
    check fails: field name -> ``"<flag> <value>: <what is allowed>"``."""
    problems = {}
    for f in fields(options):
        option, value = option_of(f), getattr(options, f.name)
        if option.valid is not None and not option.valid(value):
            problems[f.name] = f"{option.flag} {value!r}: {option.allowed}"
    return problems
