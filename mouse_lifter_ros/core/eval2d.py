"""Accuracy of a 2D keypoint model on a DeepLabCut-format labelled folder.

``evaluate_2d`` runs the model on each labelled image and compares its keypoints with
the labels: per keypoint and overall mean (and median) pixel error and the percentage of
correct keypoints (PCK) within 5 and 10 px. A keypoint the model does not find (NaN) is
counted as an error of infinity: it is never within a PCK radius and the mean error is
taken over found keypoints with the miss count reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.keypoints import KeypointModel
from mouse_lifter_ros.core.record import read_dlc_csv

PCK_RADII = (5.0, 10.0)


def read_labels(csv: str | Path, mapping: dict[str, str], *, frames: Sequence[str] | None = None
                ) -> tuple[list[Path], list[str], np.ndarray]:
    """Labelled image paths, their parts (as named in ``mapping``: theirs -> the model's)
    and labels (N, P, 2) px (NaN: not labelled), restricted to image names ``frames``."""
    path = Path(csv)
    df = read_dlc_csv(path)
    parts = list(dict.fromkeys(df.columns.get_level_values(-2)))
    missing = [p for p in mapping if p not in parts]
    if missing:
        raise InputError(f"labels {path}: --map names {missing}, not among its bodyparts "
                         f"{parts}")
    used = [p for p in parts if p in mapping]
    if not used:
        raise InputError(f"labels {path}: none of its bodyparts {parts} is mapped to a "
                         "model keypoint (use --map their=ours,...)")
    names = [Path(str(i)).name for i in df.index]
    keep = list(range(len(names)))
    if frames is not None:
        unknown = sorted(set(frames) - set(names))
        if unknown:
            raise InputError(f"labels {path}: frames {unknown[:5]} are not labelled there")
        keep = [i for i, n in enumerate(names) if n in set(frames)]
    xy = np.stack([_part(df, p) for p in used], axis=1)[keep]
    images = [path.parent / names[i] for i in keep]
    return images, used, xy


def _part(df: Any, part: str) -> np.ndarray:
    sub = df.xs(part, axis=1, level=-2)
    x = sub.xs("x", axis=1, level=-1).to_numpy(np.float64)[:, 0]
    y = sub.xs("y", axis=1, level=-1).to_numpy(np.float64)[:, 0]
    return np.stack([x, y], axis=1)


def evaluate_2d(model: KeypointModel, labels: str | Path, mapping: dict[str, str], *,
                frames: Sequence[str] | None = None) -> dict[str, Any]:
    """Run ``model`` on each labelled image and score it; returns a JSON-ready dict."""
    images, parts, truth = read_labels(labels, mapping, frames=frames)
    bad = [mapping[p] for p in parts if mapping[p] not in model.names]
    if bad:
        raise InputError(f"eval-2d: --map targets {bad} are not keypoints of the model "
                         f"({', '.join(model.names)})")
    idx = [model.names.index(mapping[p]) for p in parts]
    pred = np.full_like(truth, np.nan)
    for i, img_path in enumerate(images):
        img = cv2.imread(str(img_path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise InputError(f"eval-2d: labelled image {img_path} is missing or unreadable")
        if img.ndim == 3 and img.shape[2] == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
        if img.dtype != np.uint8:
            img = cv2.convertScaleAbs(img, alpha=255.0 / max(1.0, float(img.max())))
        pred[i] = model(img).xy[idx]
    labelled = np.isfinite(truth).all(axis=2)
    err = np.linalg.norm(pred - truth, axis=2)
    err = np.where(np.isfinite(err), err, np.inf)
    per: dict[str, Any] = {}
    for j, part in enumerate(parts):
        e = err[labelled[:, j], j]
        per[part] = _scores(e) | {"model_keypoint": mapping[part]}
    all_e = err[labelled]
    return {"labels": str(labels), "model": model.spec.name, "frames": len(images),
            "keypoints": per, "mean": _scores(all_e)}


def _scores(e: np.ndarray) -> dict[str, Any]:
    found = e[np.isfinite(e)]
    out: dict[str, Any] = {
        "n": int(e.size), "missed": int(e.size - found.size),
        "mean_px": round(float(found.mean()), 3) if found.size else None,
        "median_px": round(float(np.median(found)), 3) if found.size else None,
        "max_px": round(float(found.max()), 3) if found.size else None}
    for r in PCK_RADII:
        out[f"pck@{r:g}px"] = round(float((e <= r).mean()) * 100, 2) if e.size else None
    return out
