"""How far two pose files of the same video agree (``mouse-lifter compare-2d``).

Labs often have another tool's predictions of a video (DeepLabCut, SLEAP exported to
DeepLabCut's layout) and want to know how close ours come, body part by body part,
where the other tool was sure. Both files are DeepLabCut tables (``.h5`` or ``.csv``:
scorer, bodyparts, coords with x, y, likelihood; rows are frames).

:func:`agreement` pairs the rows by frame number and, for each mapped body part, gives
the distance in pixels over the frames where the other file's likelihood reaches
``min_likelihood``: how many there are, how many of them we found (a finite position),
and the median, mean and 90th percentile of the distance over those.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["agreement", "format_agreement", "part_xy"]


def part_xy(table: pd.DataFrame, part: str, what: str
            ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(N, 2) x, y px and (N,) likelihood of ``part`` in a DeepLabCut ``table`` (NaN
    likelihood when the table has none); ``what`` names the table in errors."""
    bodyparts = np.asarray(table.columns.get_level_values("bodyparts"))
    coords = np.asarray(table.columns.get_level_values("coords"))
    if part not in bodyparts:
        raise InputError(f"{what}: no body part {part!r} (it has "
                         f"{', '.join(dict.fromkeys(bodyparts))})")

    def column(coord: str) -> NDArray[np.float64] | None:
        at = np.flatnonzero((bodyparts == part) & (coords == coord))
        return table.iloc[:, int(at[0])].to_numpy(np.float64) if at.size else None

    x, y, lik = column("x"), column("y"), column("likelihood")
    if x is None or y is None:
        raise InputError(f"{what}: body part {part!r} has coords "
                         f"{sorted(set(coords[bodyparts == part]))}; x and y needed")
    xy = np.column_stack([x, y])
    if lik is None:
        lik = np.full(len(xy), np.nan)
    return xy, lik


def agreement(ours: pd.DataFrame, theirs: pd.DataFrame, mapping: Mapping[str, str], *,
              min_likelihood: float = 0.9) -> dict[str, Any]:
    """Distances between ``ours`` and ``theirs`` (DeepLabCut tables of one video).

    Parameters
    ----------
    mapping:
        Their body part -> ours, e.g. ``{"Nose": "nose", "Tailroot": "tail_base"}``.
    min_likelihood:
        Only frames where their likelihood is at least this count (0..1).

    Returns
    -------
    ``{"frames": frames in both, "min_likelihood": ..., "parts": {their part: {"ours",
    "compared", "found", "median_px", "mean_px", "p90_px"}}}``; the figures are None
    where nothing was found. Raises :class:`InputError` naming every missing body part
    and a likelihood outside 0..1, or tables without a frame in common.
    """
    problems = []
    if not 0.0 <= min_likelihood <= 1.0:
        problems.append(f"min_likelihood {min_likelihood!r}: 0 .. 1")
    ours_parts = set(ours.columns.get_level_values("bodyparts"))
    theirs_parts = set(theirs.columns.get_level_values("bodyparts"))
    for t, o in mapping.items():
        if t not in theirs_parts:
            problems.append(f"theirs: no body part {t!r}")
        if o not in ours_parts:
            problems.append(f"ours: no body part {o!r}")
    common = ours.index.intersection(theirs.index)
    if len(common) == 0:
        problems.append("the two files have no frame number in common")
    if problems:
        raise InputError("compare-2d: " + "; ".join(problems))
    ours, theirs = ours.loc[common], theirs.loc[common]
    parts: dict[str, Any] = {}
    for t, o in mapping.items():
        a, lik = part_xy(theirs, t, "theirs")
        b, _ = part_xy(ours, o, "ours")
        sure = lik >= min_likelihood
        d = np.hypot(*(a[sure] - b[sure]).T)
        found = d[np.isfinite(d)]

        def fig(v: float) -> float | None:
            return round(float(v), 2) if math.isfinite(v) else None

        parts[t] = {"ours": o, "compared": int(sure.sum()), "found": int(found.size),
                    "median_px": fig(np.median(found)) if found.size else None,
                    "mean_px": fig(found.mean()) if found.size else None,
                    "p90_px": fig(np.percentile(found, 90)) if found.size else None}
    return {"frames": len(common), "min_likelihood": min_likelihood, "parts": parts}


def format_agreement(result: Mapping[str, Any]) -> str:
    """:func:`agreement`'s figures as a text table."""
    lines = [f"{result['frames']} frames in both files; their likelihood >= "
             f"{result['min_likelihood']:g}",
             f"{'theirs':16s} {'ours':14s} {'compared':>8s} {'found':>6s} {'median':>7s} "
             f"{'mean':>7s} {'p90':>7s}  (px)"]
    for t, r in result["parts"].items():
        cells = [f"{r[k]:7.2f}" if r[k] is not None else f"{'-':>7s}"
                 for k in ("median_px", "mean_px", "p90_px")]
        lines.append(f"{t:16s} {r['ours']:14s} {r['compared']:8d} {r['found']:6d} "
                     + " ".join(cells))
    return "\n".join(lines)
