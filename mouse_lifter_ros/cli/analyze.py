"""``mouse-lifter analyze``: offline analysis of videos and rosbag2 folders.

Every option is an :class:`~mouse_lifter_ros.core.analysis.AnalysisOptions` field: its
flag, help, default and check are defined there once, and this module only turns them
into argparse arguments and back.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, fields
from typing import Any

from mouse_lifter_ros.cli.arguments import Subparsers, lenient
from mouse_lifter_ros.core.analysis import AnalysisOptions
from mouse_lifter_ros.core.batch import BatchOptions, analyze_batch
from mouse_lifter_ros.core.options import option_of

#: The options dataclasses whose fields are analyze's options.
_OPTIONS = (AnalysisOptions, BatchOptions)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "analyze", help="offline analysis of videos or rosbag2 folders: DeepLabCut files, "
        "one annotations table, labelled videos, preview plots, locomotion",
        description="Run the core pipeline (2D keypoints; with --arena also depth, the 3D "
        "lifter and behaviour) over each movie without ROS and write into --out per movie "
        "STEM: STEM.h5 and STEM.csv (DeepLabCut), STEM_labelled.mp4, STEM_jumps.png, "
        "STEM_likelihood.png, STEM_coordinates.png, STEM_trajectory.png, "
        "STEM_locomotion.csv and STEM_locomotion.json; and one annotations.csv (or "
        ".parquet) across the movies (Inscopix IDEAS columns, Movie number 0, 1, ...). "
        "The movies run as Dask tasks (a local cluster with one worker per core, a running "
        "scheduler, or SLURM/PBS/SGE/LSF through dask-jobqueue); a re-run skips finished "
        "movies. Prints a JSON summary. Invalid options: one error listing each, exit code "
        "2. Details: mouse_lifter_ros/core/analysis.py and batch.py.")
    p.add_argument("videos", nargs="+", metavar="VIDEO",
                   help=".mp4/.avi files or rosbag2 folders, in movie-number order")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in (f for cls in _OPTIONS for f in fields(cls)):
        option = option_of(f)
        if option.group is not None and option.group not in groups:
            groups[option.group] = p.add_argument_group(option.group)
        where = p if option.group is None else groups[option.group]
        kwargs: dict[str, Any] = {"dest": f.name, "help": option.help}
        if option.negated:
            kwargs.update(action="store_false", default=f.default)
        elif isinstance(f.default, bool) and f.default:
            kwargs.update(action=argparse.BooleanOptionalAction, default=f.default)
        elif isinstance(f.default, bool):
            kwargs.update(action="store_true", default=f.default)
        else:
            kwargs.update(type=lenient(option.parse), metavar=option.metavar,
                          required=option.required)
            if not option.required and f.default is not MISSING:
                kwargs["default"] = f.default
        where.add_argument(option.flag, **kwargs)
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    options = AnalysisOptions(**{f.name: getattr(ns, f.name) for f in fields(AnalysisOptions)})
    batch = BatchOptions(**{f.name: getattr(ns, f.name) for f in fields(BatchOptions)})
    summary = analyze_batch(ns.videos, options, batch=batch)
    print(json.dumps(summary, indent=2))
    # The outputs are written; a movie that failed or could not be read whole still fails
    # the run.
    return 1 if summary["failed"] or any(m.get("problems") for m in summary["movies"]) else 0
