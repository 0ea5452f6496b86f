"""The four preview plots of ``mouse-lifter analyze``, as PNG files (matplotlib, Agg).

Each function takes one movie's keypoint track and writes one figure, as DeepLabCut's
``plot_trajectories`` and the Inscopix IDEAS DeepLabCut tool preview them:

- :func:`plot_jumps`: per body part, a histogram of the frame-to-frame jumps (pixels),
  where a long tail flags tracking errors;
- :func:`plot_likelihood`: every body part's likelihood over time, with the p-cutoff;
- :func:`plot_coordinates`: every body part's x and y (pixels) over time;
- :func:`plot_trajectory`: every body part's positions in the field of view (image
  pixels, y down as in the image), with the centre of mass's path.

Arrays: ``xy`` (T, K, 2) pixels (NaN: missing), ``likelihood`` (T, K) 0..1, ``times``
(T,) seconds; ``names`` the K body parts; ``colours`` K RGB tuples 0..1 (the labelled
video's, :func:`rgb_colours`). Points whose likelihood is below ``p_cutoff`` are left out
of every plot but the likelihood's. Figures are built on a :class:`matplotlib.figure.Figure`
with the Agg canvas (no pyplot state, no display needed); matplotlib is imported by the
functions, not with the module.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError

FloatArray = NDArray[np.float64]
RGB = tuple[float, float, float]
#: Resolution of the PNG files, dots per inch.
DPI = 100


def rgb_colours(bgr: Sequence[tuple[int, int, int]]) -> list[RGB]:
    """OpenCV BGR colours 0..255 -> matplotlib RGB 0..1."""
    return [(r / 255.0, g / 255.0, b / 255.0) for b, g, r in bgr]


def _check(xy: NDArray[Any], likelihood: NDArray[Any], names: Sequence[str],
           colours: Sequence[RGB]) -> tuple[FloatArray, FloatArray]:
    pts = np.asarray(xy, dtype=np.float64)
    like = np.asarray(likelihood, dtype=np.float64)
    k = len(names)
    if pts.ndim != 3 or pts.shape[1:] != (k, 2) or like.shape != pts.shape[:2] \
            or len(colours) < k:
        raise InputError(f"plots: xy {pts.shape}, likelihood {like.shape}, {len(colours)} "
                         f"colours: (T, {k}, 2), (T, {k}) and {k} needed for {k} names")
    return pts, like


def _cut(xy: FloatArray, likelihood: FloatArray, p_cutoff: float) -> FloatArray:
    """``xy`` with NaN where the likelihood is below ``p_cutoff`` (or NaN)."""
    with np.errstate(invalid="ignore"):
        keep = likelihood >= p_cutoff
    return np.where(keep[:, :, None], xy, np.nan)


def _figure(width: float, height: float,
            layout: Literal["constrained"] | None = "constrained") -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=DPI)
    return out


def frame_jumps(xy: NDArray[Any]) -> FloatArray:
    """(T - 1, K) distance each keypoint of ``xy`` (T, K, 2) moved between consecutive
    frames, in its unit; NaN where either frame misses it."""
    pts = np.asarray(xy, dtype=np.float64)
    if len(pts) < 2:
        return np.zeros((0, pts.shape[1]))
    return np.asarray(np.linalg.norm(np.diff(pts, axis=0), axis=2))


def plot_jumps(path: str | os.PathLike[str], xy: NDArray[Any], likelihood: NDArray[Any],
               names: Sequence[str], colours: Sequence[RGB], *, p_cutoff: float,
               title: str = "") -> Path:
    """Histograms of each body part's frame-to-frame jumps (px; frames at or above
    ``p_cutoff`` on both sides), one panel per part, counts on a log scale."""
    from matplotlib.ticker import NullFormatter

    pts, like = _check(xy, likelihood, names, colours)
    jumps = frame_jumps(_cut(pts, like, p_cutoff))
    k = len(names)
    cols = min(4, k)
    rows = math.ceil(k / cols)
    # a fixed grid: the constrained layout takes seconds for 16 panels
    fig = _figure(3.0 * cols, 2.2 * rows + 0.4, layout=None)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.06, top=1 - 0.55 / (2.2 * rows + 0.4),
                        wspace=0.25, hspace=0.45)
    finite = jumps[np.isfinite(jumps)]
    top = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    top = max(top, 1.0)
    bins = np.linspace(0.0, top, 41)
    axes = fig.subplots(rows, cols, squeeze=False)
    for j, name in enumerate(names):
        ax = axes[j // cols][j % cols]
        d = jumps[:, j][np.isfinite(jumps[:, j])]
        if d.size:
            ax.hist(np.minimum(d, top), bins=bins, color=colours[j])
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.axvline(float(np.median(d)), color="k", lw=0.8, ls="--")
        else:
            ax.text(0.5, 0.5, "no frames above p-cutoff", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
        ax.set_title(f"{name} (median {np.median(d):.1f} px)" if d.size else name,
                     fontsize=9)
        ax.tick_params(labelsize=7)
        if j // cols == rows - 1 or j + cols >= k:
            ax.set_xlabel("jump between frames (px)", fontsize=8)
        if j % cols == 0:
            ax.set_ylabel("frames", fontsize=8)
    for j in range(k, rows * cols):
        axes[j // cols][j % cols].set_axis_off()
    fig.suptitle(f"{title}frame-to-frame jumps per body part (last bin: "
                 f">= {top:.0f} px; dashed: median)", fontsize=10)
    return _save(fig, path)


def plot_likelihood(path: str | os.PathLike[str], likelihood: NDArray[Any],
                    times: NDArray[Any], names: Sequence[str], colours: Sequence[RGB], *,
                    p_cutoff: float, title: str = "") -> Path:
    """Every body part's likelihood against time, and the p-cutoff (dashed)."""
    like = np.asarray(likelihood, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if like.shape != (len(t), len(names)):
        raise InputError(f"plots: likelihood {like.shape}: ({len(t)}, {len(names)}) needed")
    fig = _figure(10.0, 4.0)
    ax = fig.add_subplot()
    for j, name in enumerate(names):
        ax.plot(t, like[:, j], color=colours[j], lw=0.7, label=name)
    ax.axhline(p_cutoff, color="k", lw=1.0, ls="--", label=f"p-cutoff {p_cutoff:g}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(float(t[0]) if len(t) else 0.0, float(t[-1]) if len(t) > 1 else 1.0)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("likelihood")
    ax.set_title(f"{title}likelihood over time")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return _save(fig, path)


def plot_coordinates(path: str | os.PathLike[str], xy: NDArray[Any],
                     likelihood: NDArray[Any], times: NDArray[Any], names: Sequence[str],
                     colours: Sequence[RGB], *, p_cutoff: float,
                     frame_size: tuple[int, int] | None = None, title: str = "") -> Path:
    """x and y (px) of every body part against time, frames at or above ``p_cutoff``;
    ``frame_size`` (W, H) px sets the y ranges to the image (y down, as in it)."""
    pts, like = _check(xy, likelihood, names, colours)
    t = np.asarray(times, dtype=np.float64)
    shown = _cut(pts, like, p_cutoff)
    fig = _figure(10.0, 6.0)
    axes = fig.subplots(2, 1, sharex=True)
    for a, (ax, coord) in enumerate(zip(axes, ("x", "y"), strict=True)):
        for j, name in enumerate(names):
            ax.plot(t, shown[:, j, a], color=colours[j], lw=0.7, label=name)
        ax.set_ylabel(f"{coord} (px)")
        if frame_size is not None:
            ax.set_ylim(0, frame_size[a])
        if coord == "y":
            ax.invert_yaxis()
    axes[1].set_xlabel("time (s)")
    axes[0].set_title(f"{title}coordinates over time (likelihood >= {p_cutoff:g})")
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return _save(fig, path)


def plot_trajectory(path: str | os.PathLike[str], xy: NDArray[Any], likelihood: NDArray[Any],
                    names: Sequence[str], colours: Sequence[RGB], *, p_cutoff: float,
                    frame_size: tuple[int, int], centre: NDArray[Any] | None = None,
                    title: str = "") -> Path:
    """Each body part's positions (frames at or above ``p_cutoff``) in the field of view,
    ``frame_size`` (W, H) px, y down as in the image; ``centre`` (T, 2) px, the centre of
    mass, drawn as a black path over them."""
    pts, like = _check(xy, likelihood, names, colours)
    shown = _cut(pts, like, p_cutoff)
    w, h = frame_size
    fig = _figure(8.0, 8.0 * h / w * 0.85 + 0.6)
    ax = fig.add_subplot()
    for j, name in enumerate(names):
        ax.scatter(shown[:, j, 0], shown[:, j, 1], s=2, color=colours[j], alpha=0.5,
                   label=name, linewidths=0)
    if centre is not None:
        c = np.asarray(centre, dtype=np.float64)
        ax.plot(c[:, 0], c[:, 1], color="k", lw=0.8, label="centre of mass")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_aspect("equal")
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    ax.set_title(f"{title}trajectory in the field of view (likelihood >= {p_cutoff:g})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False,
              markerscale=4)
    return _save(fig, path)
