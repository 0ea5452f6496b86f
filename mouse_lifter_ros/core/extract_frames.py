"""Pick frames of a lab's videos to label, and write them as a DeepLabCut project folder
(``mouse-lifter extract-frames``).

Per video, from ``candidates`` frames spread evenly over it:

- **diverse frames** (k-means, as DeepLabCut's ``extract_frames`` does): each candidate
  shrunk to a thumbnail of :data:`THUMB_WIDTH` px wide, grey, its mean taken out;
  k-means on them in as many clusters as diverse frames are wanted; from each cluster
  the candidate nearest its centre;
- **frames the model is unsure of**: the rest, by the lowest *certainty*, the smallest
  of the detector's confidence and the median confidence of the body keypoints (nose,
  ears, tail base); a frame without a mouse found has certainty 0. Frames within
  ``count / candidates`` of the video of a chosen one are skipped, so that one hard
  moment does not fill them all.

Written into the project folder ``out``:

- ``labeled-data/<video name>/img<frame>.png`` (the frame number padded as DeepLabCut
  does, to the digits of the frame count);
- ``labeled-data/<video name>/machinelabels-iter0.h5`` (and ``.csv``): the model's
  predictions, as DeepLabCut writes its own for refinement: x, y and likelihood per body
  part, empty where the confidence is under ``p_cutoff``. DeepLabCut's labelling GUI
  and napari-deeplabcut open them as a layer to correct; saving it writes
  ``CollectedData_<scorer>.h5``, the labels ``finetune`` reads. Nothing the model
  guessed becomes a label without a person saving it;
- ``config.yaml``: the DeepLabCut project description (scorer, body parts, skeleton,
  videos), created, or extended with the new videos when it exists (its body parts must
  then be the ones asked for).

Frames are read by seeking to each candidate, so the cost grows with ``candidates``, not
with the video's length.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import yaml
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError, ParameterError, SourceError
from mouse_lifter_ros.core.keypoints import BODY_KEYPOINTS, P_CUTOFF, KeypointModel, Keypoints
from mouse_lifter_ros.core.labels import LABELLED_DATA, write_labels

#: Thumbnail width for k-means, px (DeepLabCut's default resize width is 30).
THUMB_WIDTH: Final = 32
#: The starting predictions' file, as DeepLabCut names its machine labels.
MACHINE_LABELS: Final = "machinelabels-iter0"
DEFAULT_CANDIDATES: Final = 300
DEFAULT_UNSURE_FRACTION: Final = 0.25


@dataclass(frozen=True)
class PickedFrame:
    """One frame chosen to label: its index in the video, why (``diverse`` or
    ``unsure``), the model's certainty 0..1 on it and its predictions."""

    index: int
    reason: str
    certainty: float
    keypoints: Keypoints


def certainty(kp: Keypoints) -> float:
    """How sure the model is of a frame, 0..1: the smallest of the detector's
    confidence and the median confidence of the body keypoints; 0 without a mouse."""
    if not np.isfinite(kp.xy).any():
        return 0.0
    idx = [kp.names.index(n) for n in BODY_KEYPOINTS if n in kp.names]
    body = float(np.median(kp.confidence[idx])) if idx else float(np.median(kp.confidence))
    det = kp.detection.confidence if kp.detection is not None else 1.0
    return float(min(det, body))


def thumbnail(frame: NDArray[np.uint8]) -> NDArray[np.float32]:
    """(T,) k-means features of a frame: grey, :data:`THUMB_WIDTH` px wide, mean 0."""
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    small = cv2.resize(grey, (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))),
                       interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    return np.asarray(small - small.mean(), np.float32)


def kmeans_picks(features: NDArray[np.float32], k: int, *, seed: int = 0) -> list[int]:
    """Indices (sorted) of the ``k`` rows of ``features`` (N, T) nearest the centres of
    ``k`` k-means clusters (one per cluster, all distinct)."""
    n = len(features)
    if k >= n:
        return list(range(n))
    if k <= 0:
        return []
    cv2.setRNGSeed(seed)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
    _, labels, centres = cv2.kmeans(features, k, None, crit, 3, cv2.KMEANS_PP_CENTERS)
    labels = labels.ravel()
    out: list[int] = []
    for c in range(k):
        members = np.flatnonzero(labels == c)
        if len(members):
            d = np.linalg.norm(features[members] - centres[c], axis=1)
            out.append(int(members[np.argmin(d)]))
    # an empty cluster (rare): the candidates farthest from those picked fill the gap
    while len(out) < k:
        rest = [i for i in range(n) if i not in out]
        d = np.min(np.linalg.norm(features[rest][:, None] - features[out][None], axis=2),
                   axis=1) if out else np.zeros(len(rest))
        out.append(rest[int(np.argmax(d))])
    return sorted(out)


def pick_frames(indices: Sequence[int], features: NDArray[np.float32],
                sure: Sequence[float], count: int, *, unsure_fraction: float,
                min_gap: int, seed: int = 0) -> list[tuple[int, str]]:
    """Which candidates to label: ``indices`` (N,) their frame numbers, ``features``
    (N, T), ``sure`` (N,) the model's certainty. Returns (position among the candidates,
    reason) in frame order: ``count - round(unsure_fraction * count)`` diverse ones, then
    the least certain, none within ``min_gap`` frames of another pick."""
    n_unsure = min(count, round(unsure_fraction * count))
    chosen = {i: "diverse" for i in kmeans_picks(features, count - n_unsure, seed=seed)}
    for i in np.argsort(np.asarray(sure), kind="stable").tolist():
        if sum(r == "unsure" for r in chosen.values()) >= n_unsure or len(chosen) >= count:
            break
        if i not in chosen and all(abs(indices[i] - indices[j]) >= min_gap for j in chosen):
            chosen[i] = "unsure"
    return sorted(chosen.items(), key=lambda item: indices[item[0]])


def open_video(video: Path) -> tuple[cv2.VideoCapture, int]:
    """An open video and its frame count; :class:`SourceError` saying why it cannot be."""
    if not video.is_file():
        what = "is not a file" if video.exists() else "does not exist"
        raise SourceError(f"video file '{video}' {what}")
    cap = cv2.VideoCapture(str(video))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    if n <= 0:
        cap.release()
        raise SourceError(f"video file '{video}': OpenCV cannot read it or finds no frames")
    return cap, n


def read_frame(cap: cv2.VideoCapture, index: int) -> NDArray[np.uint8] | None:
    """Frame ``index`` of an open video (seek, then read), None when it cannot be read."""
    if int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != index:
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    return np.asarray(frame, np.uint8) if ok and frame is not None else None


def check_options(*, count: int, candidates: int, unsure_fraction: float, start: float,
                  stop: float, p_cutoff: float, bodyparts: Sequence[str],
                  names: Sequence[str]) -> None:
    """Every problem of the options in one :class:`ParameterError`."""
    problems = []
    if count < 1:
        problems.append(f"count={count}: at least 1")
    if candidates < count:
        problems.append(f"candidates={candidates}: at least count ({count})")
    if not 0.0 <= unsure_fraction <= 1.0:
        problems.append(f"unsure_fraction={unsure_fraction}: 0 .. 1")
    if not 0.0 <= start < stop <= 1.0:
        problems.append(f"start={start}, stop={stop}: 0 <= start < stop <= 1 (fractions of "
                        "the video)")
    if not 0.0 <= p_cutoff <= 1.0:
        problems.append(f"p_cutoff={p_cutoff}: 0 .. 1")
    unknown = [b for b in bodyparts if b not in names]
    if unknown or not bodyparts:
        problems.append(f"bodyparts {unknown or '(none)'}: from the model's {', '.join(names)}")
    if problems:
        raise ParameterError("extract-frames: " + "; ".join(problems))


def project_config(path: Path, *, scorer: str, bodyparts: Sequence[str],
                   skeleton: Sequence[Sequence[str]], videos: dict[str, tuple[int, int]]
                   ) -> dict[str, Any]:
    """The project's ``config.yaml``: the existing one with ``videos`` (path -> width,
    height) added, or a new one. Raises :class:`InputError` when an existing one has
    other body parts."""
    crops = {v: {"crop": f"0, {w}, 0, {h}"} for v, (w, h) in videos.items()}
    if path.is_file():
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise InputError(f"project config '{path}': not a YAML mapping")
        if list(data.get("bodyparts") or []) != list(bodyparts):
            raise InputError(f"project config '{path}': body parts {data.get('bodyparts')}, "
                             f"these frames would have {list(bodyparts)}; use --bodyparts "
                             "with the project's, or another --out")
        data["video_sets"] = {**(data.get("video_sets") or {}), **crops}
        return data
    return {
        "Task": path.parent.name, "scorer": scorer,
        "date": datetime.date.today().strftime("%b%d"), "multianimalproject": False,
        "identity": None, "project_path": str(path.parent.resolve()), "engine": "pytorch",
        "video_sets": crops, "bodyparts": list(bodyparts), "start": 0, "stop": 1,
        "numframes2pick": 20,
        "skeleton": [list(e) for e in skeleton if e[0] in bodyparts and e[1] in bodyparts],
        "skeleton_color": "black", "pcutoff": 0.6, "dotsize": 6, "alphavalue": 0.7,
        "colormap": "rainbow", "TrainingFraction": [0.95], "iteration": 0,
        "default_net_type": "resnet_50", "default_augmenter": "default",
        "snapshotindex": -1, "batch_size": 8, "cropping": False,
        "x1": 0, "x2": 640, "y1": 277, "y2": 624, "corner2move2": [50, 50],
        "move2corner": True}


def extract_frames(videos: Sequence[str | Path], out: str | Path, model: KeypointModel, *,
                   count: int = 20, candidates: int = DEFAULT_CANDIDATES,
                   unsure_fraction: float = DEFAULT_UNSURE_FRACTION, start: float = 0.0,
                   stop: float = 1.0, scorer: str = "lab",
                   bodyparts: Sequence[str] | None = None, p_cutoff: float = P_CUTOFF,
                   seed: int = 0, progress: Callable[[str], None] | None = None
                   ) -> dict[str, list[PickedFrame]]:
    """Pick ``count`` frames per video and write the project folder ``out`` (module
    notes). ``bodyparts``: of the model's keypoints, those to label (default all).
    Returns, per video folder name, the frames picked. Raises :class:`InputError` when a
    video's folder exists already in ``out`` (nothing is overwritten)."""
    parts = list(bodyparts) if bodyparts else list(model.names)
    check_options(count=count, candidates=candidates, unsure_fraction=unsure_fraction,
                  start=start, stop=stop, p_cutoff=p_cutoff, bodyparts=parts,
                  names=model.names)
    project = Path(out)
    paths = [Path(v) for v in videos]
    if not paths:
        raise ParameterError("extract-frames: no video given")
    stems = [p.stem for p in paths]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    taken = [s for s in stems if (project / LABELLED_DATA / s).exists()]
    if twice or taken:
        raise InputError("extract-frames: " + "; ".join(
            ([f"videos named alike ({', '.join(twice)}) would share a folder"] if twice
             else []) + ([f"{project / LABELLED_DATA}/{', '.join(taken)} exist already "
                          "(move them, or choose another --out)"] if taken else [])))
    config = project / "config.yaml"
    project_config(config, scorer=scorer, bodyparts=parts, skeleton=(), videos={})
    idx = [model.names.index(p) for p in parts]
    sizes: dict[str, tuple[int, int]] = {}
    result: dict[str, list[PickedFrame]] = {}
    for video in paths:
        cap, n = open_video(video)
        try:
            lo, hi = math.floor(start * n), max(math.floor(start * n) + 1, math.ceil(stop * n))
            cand = sorted({int(i) for i in np.linspace(lo, hi - 1, min(candidates, hi - lo))})
            feats, sure, kps, kept = [], [], [], []
            for k, i in enumerate(cand):
                frame = read_frame(cap, i)
                if frame is None:
                    continue
                kp = model(frame)
                feats.append(thumbnail(frame))
                sure.append(certainty(kp))
                kps.append(kp)
                kept.append(i)
                size = (frame.shape[1], frame.shape[0])
                if progress is not None and (k + 1) % 50 == 0:
                    progress(f"{video.name}: {k + 1}/{len(cand)} candidates")
            if not kept:
                raise SourceError(f"video file '{video}': none of its frames could be read")
            gap = max(1, (hi - lo) // max(1, 4 * count))
            picks = pick_frames(kept, np.stack(feats), sure, count,
                                unsure_fraction=unsure_fraction, min_gap=gap, seed=seed)
            folder = project / LABELLED_DATA / video.stem
            folder.mkdir(parents=True)
            digits = len(str(n))
            chosen = [PickedFrame(kept[j], why, sure[j], kps[j]) for j, why in picks]
            names = [f"img{f.index:0{digits}d}.png" for f in chosen]
            for f, name in zip(chosen, names, strict=True):
                frame = read_frame(cap, f.index)  # read again: candidates are not kept
                if frame is None or not cv2.imwrite(str(folder / name), frame):
                    raise InputError(f"extract-frames: cannot write '{folder / name}'")
        finally:
            cap.release()
        xy = np.stack([f.keypoints.xy[idx] for f in chosen]).astype(np.float64)
        conf = np.stack([f.keypoints.confidence[idx] for f in chosen]).astype(np.float64)
        xy[conf < p_cutoff] = np.nan
        write_labels(folder, stem=MACHINE_LABELS, scorer=model.spec.name,
                     images=names, bodyparts=parts, xy=xy,
                     likelihood=np.where(np.isfinite(xy[:, :, 0]), conf, np.nan))
        sizes[str(video.resolve())] = size
        result[video.stem] = chosen
    data = project_config(config, scorer=scorer, bodyparts=parts,
                          skeleton=model.spec.skeleton, videos=sizes)
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return result
