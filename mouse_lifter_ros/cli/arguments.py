"""Argument types and small helpers the command modules share."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from mouse_lifter_ros.core.errors import MouseLifterError

if TYPE_CHECKING:
    from mouse_lifter_ros.core.keypoints import KeypointModel

#: ``--map`` of the openfield-dlc labels (their body part = our keypoint).
OPENFIELD_MAP: Final = "snout=nose,leftear=left_ear,rightear=right_ear,tailbase=tail_base"

#: What each command module's ``register`` adds its parser to.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"



def add_workers_and_cache(p: argparse.ArgumentParser, *, cache: str,
                          workers: int | None = None) -> None:
    """``--workers`` (processes; ``workers``, None: one per core) and ``--cache`` (a
    folder keeping ``cache`` between runs), as the rendering and training commands take
    them."""
    default = "CPU cores" if workers is None else str(workers)
    p.add_argument("--workers", type=int, default=workers,
                   help=f"processes rendering or lifting (default: {default})")
    p.add_argument("--cache", default=None, help=f"folder keeping {cache} between runs")


def add_device(p: argparse.ArgumentParser, *, help: str | None = None) -> None:
    """``--device``: where ONNX Runtime runs the networks, or PyTorch trains them
    (:data:`~.keypoints.DEVICES`)."""
    from mouse_lifter_ros.core.keypoints import DEVICES

    p.add_argument("--device", default="auto", choices=DEVICES, help=help)


def add_training_device(p: argparse.ArgumentParser) -> None:
    """``--device``, ``--loader-workers`` and ``--amp`` of the training commands, read by
    :func:`training_device_args`."""
    add_device(p, help="where PyTorch trains: cpu, cuda, or auto (default: cuda when "
               "PyTorch sees a CUDA device, else cpu)")
    p.add_argument("--loader-workers", type=int, default=None, metavar="N",
                   help="processes building the training batches, 0: the main process "
                   "(default: one per core but one, at most 4); the same weights either way")
    p.add_argument("--amp", action="store_true",
                   help="mixed precision (float16) on cuda; ignored on the CPU")


def training_device_args(ns: argparse.Namespace) -> dict[str, Any]:
    """The config fields of :func:`add_training_device`'s options (``loader_workers``
    only when given: the config's default otherwise)."""
    args: dict[str, Any] = {"device": ns.device, "amp": ns.amp}
    if ns.loader_workers is not None:
        args["loader_workers"] = ns.loader_workers
    return args


def add_keypoint_model(p: argparse.ArgumentParser) -> None:
    """``--model`` (a 2D model YAML) and ``--device``, read by :func:`keypoint_model`."""
    p.add_argument("--model", default=None, help="model YAML (default: the shipped model)")
    add_device(p)


def keypoint_model(ns: argparse.Namespace) -> KeypointModel:
    """The 2D model of ``--model`` on ``--device``; says which on stderr."""
    from mouse_lifter_ros.core.keypoints import KeypointModel

    model = KeypointModel(ns.model, device=ns.device)
    print(f"model: {model.description}", file=sys.stderr)
    return model


def lenient(kind: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type converting with ``kind`` and keeping the text when it cannot: the
    options' own check then lists every bad value in one error instead of argparse
    stopping at the first."""
    def parse(text: str) -> object:
        try:
            return kind(text)
        except ValueError:
            return text
    return parse


def pair(kind: Callable[[str], float], example: str) -> Callable[[str], tuple[float, float]]:
    """An argparse type reading ``AxB`` as two numbers of ``kind``."""
    def parse(text: str) -> tuple[float, float]:
        a, sep, b = text.lower().partition("x")
        try:
            if sep:
                return kind(a), kind(b)
        except ValueError:
            pass
        raise argparse.ArgumentTypeError(f"{text!r}: write it AxB, e.g. {example}")
    return parse


def pixel_corners(text: str) -> list[tuple[float, float]]:
    """``"x1,y1 x2,y2 x3,y3 x4,y4"`` -> four (x, y) pixels (argparse type)."""
    try:
        points = [tuple(float(v) for v in item.split(",")) for item in text.split()]
    except ValueError:
        points = []
    if len(points) != 4 or any(len(p) != 2 for p in points):
        raise argparse.ArgumentTypeError(
            f"{text!r}: write four pixels 'x1,y1 x2,y2 x3,y3 x4,y4'")
    return [(p[0], p[1]) for p in points]


def name_list(text: str | None) -> list[str] | None:
    """``a,b,c`` or ``@FILE`` (one name per line) -> the names; None or empty: None."""
    if not text:
        return None
    if text.startswith("@"):
        return [ln.strip() for ln in Path(text[1:]).read_text().splitlines() if ln.strip()]
    return [t.strip() for t in text.split(",") if t.strip()]


def workers(requested: int | None) -> int:
    """Worker processes: ``requested``, or one per CPU core."""
    return requested or os.cpu_count() or 1


def optional_path(text: str | None) -> Path | None:
    """``text`` as a Path; None or empty: None."""
    return Path(text) if text else None


def training_extra(command: str, exc: ImportError) -> MouseLifterError:
    """The error of a training command run without PyTorch installed."""
    return MouseLifterError(f"{command} needs the training extra (PyTorch): "
                            f"pip install 'mouse_lifter_ros[train]' ({exc})")


def labels_argument(parser: argparse.ArgumentParser) -> None:
    """``--labels PATH...``: DeepLabCut labels as :mod:`~mouse_lifter_ros.core.labels`
    reads them (the commands that take labelled frames share it)."""
    parser.add_argument("--labels", required=True, nargs="+", metavar="PATH",
                        help="CollectedData_*.csv/.h5 files (DeepLabCut 2.2+ or older), "
                        "their folders, labeled-data/ or a DeepLabCut project folder; "
                        "images beside the labels")


def add_json_output(p: argparse.ArgumentParser) -> None:
    """``--json FILE``: the figures as JSON too (``-``: on standard output instead of the
    table); :func:`report` writes them."""
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write every figure as JSON (- for standard output, instead "
                   "of the tables)")


def report(ns: argparse.Namespace, result: object, table: Callable[[], str]) -> None:
    """Print ``table()``, and write ``result`` as JSON where ``--json`` says (on standard
    output instead of the table for ``-``)."""
    import json

    text = json.dumps(result, indent=2)
    if ns.json == "-":
        print(text)
        return
    if ns.json:
        Path(ns.json).write_text(text + "\n")
    print(table())
