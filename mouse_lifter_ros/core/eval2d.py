"""Accuracy of a 2D keypoint model on labelled frames (DeepLabCut's layout).

``evaluate_2d`` runs the model on each labelled image (read by :mod:`~.core.labels`:
one file, several, or a whole ``labeled-data/`` folder) and compares its keypoints with
the labels, per labelled set (one video folder) and over all of them.

Each frame's detection is one of:

- **found**: the keypoint network's crop holds at least half of the frame's labels;
- **wrong detection**: the detector reported a mouse, but the crop holds fewer than half
  of the labels (a cup, a shadow or a wall taken for the mouse). Its keypoints are not
  scored as found: they count as failures, like a miss;
- **missed**: no mouse reported.

Per keypoint and overall: the mean, median and largest pixel error over the found frames,
and the percentage of correct keypoints (PCK) within 5 and 10 px over *all* labelled
points, so that a miss or a wrong detection is never within a radius.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.keypoints import KeypointModel, Keypoints
from mouse_lifter_ros.core.labels import (
    LabelledSet,
    all_bodyparts,
    label_map,
    mapped_xy,
    read_image,
    read_labelled,
    select_frames,
)

PCK_RADII: Final = (5.0, 10.0)
#: A detection is wrong when its crop holds less than this fraction of the labels.
WRONG_BELOW: Final = 0.5
OUTCOMES: Final = ("found", "wrong_detection", "missed")


@dataclass(frozen=True)
class FramePrediction:
    """One labelled frame: ``truth`` and ``pred`` (P, 2) px of the mapped body parts
    (NaN: not labelled / not found) and the detection's outcome (one of
    :data:`OUTCOMES`)."""

    set_name: str
    image: Path
    truth: NDArray[np.float64]
    pred: NDArray[np.float64]
    outcome: str


def detection_outcome(kp: Keypoints, truth: NDArray[Any]) -> str:
    """``found``, ``wrong_detection`` or ``missed`` for the model's answer ``kp`` on a
    frame labelled ``truth`` (P, 2) px (NaN rows: not labelled)."""
    if not np.isfinite(kp.xy).any():
        return "missed"
    pts = np.asarray(truth, np.float64)
    pts = pts[np.isfinite(pts).all(axis=1)]
    cx, cy, side = kp.crop
    if not len(pts) or not np.isfinite(side):
        return "found"
    inside = (np.abs(pts[:, 0] - cx) <= side / 2) & (np.abs(pts[:, 1] - cy) <= side / 2)
    return "found" if inside.mean() >= WRONG_BELOW else "wrong_detection"


def predict_frames(model: KeypointModel, sets: Sequence[LabelledSet],
                   mapping: Mapping[str, str]) -> list[FramePrediction]:
    """Run ``model`` on every frame of ``sets``; ``mapping``: labelled body part -> the
    model's keypoint name (:func:`~.labels.label_map`)."""
    parts = list(mapping)
    idx = [model.names.index(mapping[p]) for p in parts]
    out = []
    for s in sets:
        truth = mapped_xy(s, {p: p for p in parts}, parts)
        for i, img_path in enumerate(s.images):
            kp = model(read_image(img_path))
            out.append(FramePrediction(s.name, img_path, truth[i],
                                       kp.xy[idx].astype(np.float64),
                                       detection_outcome(kp, truth[i])))
    return out


def score_frames(frames: Sequence[FramePrediction], parts: Sequence[str],
                 mapping: Mapping[str, str]) -> dict[str, Any]:
    """The figures of ``frames``: outcome counts, per body part and over all of them."""
    counts = {o: sum(f.outcome == o for f in frames) for o in OUTCOMES}
    if not frames:
        return {"frames": 0, **counts, "keypoints": {}, "mean": _scores(np.zeros(0))}
    truth = np.stack([f.truth for f in frames])
    pred = np.stack([f.pred for f in frames])
    ok = np.array([f.outcome == "found" for f in frames])
    labelled: NDArray[np.bool_] = np.asarray(np.isfinite(truth).all(axis=2))
    err = np.linalg.norm(pred - truth, axis=2)
    err = np.where(ok[:, None] & np.isfinite(err), err, np.inf)
    per = {part: _scores(err[labelled[:, j], j]) | {"model_keypoint": mapping[part]}
           for j, part in enumerate(parts)}
    return {"frames": len(frames), **counts, "keypoints": per,
            "mean": _scores(err[labelled])}


def _unique_names(sets: Sequence[LabelledSet]) -> list[str]:
    names = [s.name for s in sets]
    return [n if names.count(n) == 1 else f"{s.path.parent.parent.name}/{n}"
            for n, s in zip(names, sets, strict=True)]


def evaluate_2d(model: KeypointModel,
                labels: str | Path | Sequence[str | Path] | Sequence[LabelledSet],
                mapping: Mapping[str, str] | None = None, *,
                frames: Sequence[str] | None = None, overlays: str | Path | None = None
                ) -> dict[str, Any]:
    """Run ``model`` on each labelled image and score it; returns a JSON-ready dict:
    ``sets`` (one block per labelled set), ``overall``, and the overall block's
    ``frames``, ``keypoints`` and ``mean`` at the top level.

    ``labels``: paths for :func:`~.labels.read_labelled`, or sets already read.
    ``mapping``: labelled body part -> the model's keypoint (default: the parts named
    as a model keypoint). ``frames``: only these images (see :func:`select_frames`).
    ``overlays``: a folder to draw each frame's labels and predictions into
    (``<folder>/<set>/<image>``).
    """
    if isinstance(labels, str | Path):
        sets = read_labelled(labels)
    else:
        items = list(labels)
        sets = ([s for s in items if isinstance(s, LabelledSet)]
                if items and all(isinstance(s, LabelledSet) for s in items)
                else read_labelled([s for s in items if not isinstance(s, LabelledSet)]))
    used = label_map(all_bodyparts(sets), model.names, mapping, what="eval-2d")
    sets = select_frames(sets, frames)
    preds = predict_frames(model, sets, used)
    names = _unique_names(sets)
    parts = list(used)
    by_set = {n: score_frames([f for f in preds if f.set_name == s.name], parts, used)
              for n, s in zip(names, sets, strict=True)}
    overall = score_frames(preds, parts, used)
    if overlays is not None:
        for n, s in zip(names, sets, strict=True):
            folder = Path(overlays) / n
            folder.mkdir(parents=True, exist_ok=True)
            for f in (f for f in preds if f.set_name == s.name):
                draw_eval_frame(read_image(f.image), f.truth, f.pred, parts, f.outcome,
                                folder / f.image.name)
    return {"labels": [str(s.path) for s in sets], "model": model.spec.name,
            "map": dict(used), "sets": by_set, "overall": overall,
            "frames": overall["frames"], "keypoints": overall["keypoints"],
            "mean": overall["mean"]}


def draw_eval_frame(image: NDArray[np.uint8], truth: NDArray[Any], pred: NDArray[Any],
                    parts: Sequence[str], outcome: str, path: Path) -> None:
    """Write ``image`` with the labels ``truth`` (P, 2) px as rings, the predictions
    ``pred`` (P, 2) as dots of the same colour joined to their label, and the outcome
    and mean error as text, to ``path``."""
    import cv2

    from mouse_lifter_ros.core.overlay import draw_pose, draw_text, keypoint_colours

    cols = keypoint_colours(len(parts))
    shown = pred if outcome != "missed" else np.full_like(pred, np.nan)
    img = draw_pose(image, shown, names=list(parts), colours=cols)
    r = max(4, round(5 * min(img.shape[:2]) / 480.0))
    for j, (t, p) in enumerate(zip(truth, shown, strict=True)):
        if not np.isfinite(t).all():
            continue
        ti = (round(float(t[0])), round(float(t[1])))
        cv2.circle(img, ti, r, cols[j], 1, cv2.LINE_AA)
        if np.isfinite(p).all():
            cv2.line(img, ti, (round(float(p[0])), round(float(p[1]))), cols[j], 1,
                     cv2.LINE_AA)
    err = np.linalg.norm(np.asarray(pred, float) - np.asarray(truth, float), axis=1)
    err = err[np.isfinite(err)]
    mean = f", mean {err.mean():.1f} px" if outcome == "found" and err.size else ""
    draw_text(img, f"{outcome.replace('_', ' ')}{mean}")
    draw_text(img, "ring: label, dot: model", line=1)
    if not cv2.imwrite(str(path), img):
        raise InputError(f"eval-2d: cannot write the overlay '{path}'")


def _scores(e: NDArray[np.float64]) -> dict[str, Any]:
    found = e[np.isfinite(e)]
    out: dict[str, Any] = {
        "n": int(e.size), "not_found": int(e.size - found.size),
        "mean_px": round(float(found.mean()), 3) if found.size else None,
        "median_px": round(float(np.median(found)), 3) if found.size else None,
        "max_px": round(float(found.max()), 3) if found.size else None}
    for r in PCK_RADII:
        out[f"pck@{r:g}px"] = round(float((e <= r).mean()) * 100, 2) if e.size else None
    return out


def _cell(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def format_block(title: str, block: Mapping[str, Any]) -> str:
    """One table: a title line with the detection counts, a row per body part and one
    for all of them."""
    head = (f"{title}: {block['frames']} frames, {block['found']} found, "
            f"{block['wrong_detection']} wrong detection, {block['missed']} missed")
    radii = [f"PCK@{r:g}" for r in PCK_RADII]
    rows = [["part", "keypoint", "n", "mean px", "median px", "max px", *radii]]
    items = [*block["keypoints"].items(), ("all", {**block["mean"], "model_keypoint": ""})]
    for part, s in items:
        rows.append([part, s["model_keypoint"], str(s["n"]), _cell(s["mean_px"], ".2f"),
                     _cell(s["median_px"], ".2f"), _cell(s["max_px"], ".1f"),
                     *[_cell(s[f"pck@{r:g}px"], ".1f") for r in PCK_RADII]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in rows]
    return "\n".join([head, *("  " + ln for ln in lines)])


def format_tables(result: Mapping[str, Any]) -> str:
    """The tables of :func:`evaluate_2d`'s result: one per set, then the overall one."""
    blocks = [format_block(f"set {name}", b) for name, b in result["sets"].items()]
    if len(result["sets"]) != 1:
        blocks.append(format_block("overall", result["overall"]))
    return "\n\n".join(blocks)
