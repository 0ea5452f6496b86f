"""Train the 2D stage: the mouse detector and the keypoint network (``mouse-lifter train-2d``).

Steps, each with a progress bar:

1. draw (or load from the cache) synthetic keypoint windows and detector frames;
2. train the detector on synthetic frames, then mix in the real training frames;
3. train the keypoint network on synthetic windows only and export it (the
   "synthetic only" model, kept to measure what synthesis alone buys);
4. fine-tune it with real labelled frames mixed into every batch: their labelled
   keypoints are supervised by the labels, all others by the synthetic samples only;
5. export both networks to ONNX beside their YAML descriptions.

Everything draws from ``seed``; on the same machine, device and torch build the same
command gives the same weights, whatever the number of processes building the batches
(``loader_workers``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from numpy.typing import NDArray
from torch import Tensor, nn
from tqdm import tqdm

from mouse_lifter_ros.core.body import KEYPOINTS, SKELETON_EDGES
from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.core.keypoints import (
    BODY_KEYPOINTS,
    CROP_SCALE,
    DETECTOR_INPUT,
    P_CUTOFF,
    TAIL_CROP,
    Detector,
    KeypointModel,
    ModelError,
    ModelSpec,
    body_box,
    crop_matrix,
    letterbox,
)
from mouse_lifter_ros.core.labels import read_labelled, select_frames
from mouse_lifter_ros.core.views import view_problem, view_suffix
from mouse_lifter_ros.training.data2d import (
    RealLabels,
    real_labels,
    synth_detector_frames,
    synth_keypoint_windows,
    synth_tail_windows,
)
from mouse_lifter_ros.training.loader import (
    BatchLoader,
    MakeBatch,
    default_loader_workers,
    prepare_device,
    training_device,
)
from mouse_lifter_ros.training.nets import (
    DetectorNet,
    KeypointNet,
    export_onnx,
    load_start_weights,
)

CROP_PX = 160
KP_STRIDE = 4
DET_STRIDE = 8
MEAN, STD = 128.0, 64.0
_FLIP = np.array([KEYPOINTS.index(n.replace("left", "@").replace("right", "left")
                                  .replace("@", "right")) for n in KEYPOINTS])
#: Centre noise of the training's crops, times their side: around the body (the
#: detector's centre) and around the tail (wider: the runtime centres its tail crop on a
#: predicted or extrapolated point).
BODY_SHIFT = 0.07
TAIL_SHIFT = 0.15
_TAIL_MID = KEYPOINTS.index(TAIL_CROP)


@dataclass
class Train2DConfig:
    """What ``mouse-lifter train-2d`` does. Counts are samples; steps are batches."""

    out: Path
    seed: int = 0
    view: str = "top"
    """Where the synthetic camera is: ``top`` (above the arena) or ``bottom`` (under its
    clear floor); written into the model YAML, which the nodes pick models by."""
    detector_views: tuple[str, ...] = ()
    """Views whose synthetic frames the detector also trains on, as many of each as of
    ``view`` (finding the mouse at all is much the same task from above and below)."""
    labels: Path | None = None
    label_map: dict[str, str] = field(default_factory=dict)
    holdout_last: int = 24
    gap: int = 4
    windows: int = 40000
    detector_frames: int = 24000
    dark_near: float = 0.0
    """Share of the detector frames showing the mouse with a dark mouse-sized object
    placed beside it (:func:`~.data2d.detector_frame`); the shipped second detector's
    0.3, the first's 0."""
    det_steps: int = 4000
    det_real_steps: int = 800
    kp_steps: int = 4000
    finetune_steps: int = 2000
    batch: int = 32
    real_per_batch: int = 12
    synth_weight_labelled: float = 0.1
    """While fine-tuning, the synthetic samples' loss weight on the keypoints the real
    labels supervise (``--synth-weight``): small, the labellers' placement wins; 1, our
    placement is kept and the real frames teach the look of a rig (the bottom-view
    model's mirror frames)."""
    lr: float = 2e-3
    workers: int = 2
    threads: int = 2
    cache: Path | None = None
    parts: tuple[str, ...] = ("detector", "keypoints")
    init_keypoints: Path | None = None
    """Keypoint network weights to start the synthetic phase from instead of random ones:
    an earlier run's ``synthetic_only/keypoints.pt``, or a model's ``keypoints.onnx``
    (e.g. the shipped top-view model's, to start a bottom-view one)."""
    init_detector: Path | None = None
    """The same for the detector (``synthetic_only/detector.pt`` or ``detector.onnx``)."""
    mine_with: Path | None = None
    """Hard-example mining: a trained detector (its ``.yaml``) that scores every synthetic
    detector frame; the ``mine_fraction`` it does worst on are drawn ``mine_repeat``
    times more often by both detector phases."""
    mine_keypoints_with: Path | None = None
    """The same for the keypoint network: a trained 2D model (its ``default.yaml``) whose
    keypoint network scores every synthetic keypoint window (:func:`keypoint_errors`);
    the worst ``mine_fraction`` are drawn ``mine_repeat`` times more often by both
    keypoint phases (the tail windows as they are)."""
    mine_fraction: float = 0.15
    mine_repeat: int = 3
    device: str = "auto"
    """Where the networks train: cpu, cuda, or auto (cuda when PyTorch sees one)."""
    loader_workers: int = field(default_factory=default_loader_workers)
    """Processes building the batches (0: the main process); the result does not
    depend on it."""
    amp: bool = False
    """Mixed precision on cuda (ignored on the CPU)."""
    tail_windows: int = 0
    """Tail windows (:func:`~.data2d.tail_window`) rendered for the keypoint network; the
    model it writes then runs the tail crop (``tail_crop: true``)."""
    tail_per_batch: int = 0
    """Tail crops among each keypoint batch's synthetic samples (both phases)."""


def weights_sha256(path: Path) -> str:
    """The first 16 hex digits of a weights file's SHA-256: which run a training
    continued from, for its log and model YAML."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


# ----------------------------------------------------------------------- augmentation


def photometric(img: NDArray[np.float32], rng: np.random.Generator) -> NDArray[np.float32]:
    """Grey levels 0..255 in, the same out: gain, offset, gamma, blur, noise, cut-outs."""
    x = img / 255.0
    x = np.clip(x, 0, 1) ** math.exp(rng.normal(0, 0.35))
    x = x * rng.uniform(0.6, 1.4) + rng.uniform(-0.2, 0.2)
    if rng.random() < 0.2:
        x = 1.0 - x  # dark floors under light mice, light under dark
    if rng.random() < 0.5:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.6))
    if rng.random() < 0.3:
        gy, gx = np.mgrid[0:x.shape[0], 0:x.shape[1]] / max(x.shape)
        x = x + rng.uniform(-0.3, 0.3) * (gx - 0.5) + rng.uniform(-0.3, 0.3) * (gy - 0.5)
    x = x + rng.normal(0, rng.uniform(0, 0.06), x.shape)
    for _ in range(int(rng.integers(0, 3)) if rng.random() < 0.3 else 0):
        h, w = x.shape
        ch, cw = int(rng.integers(h // 10, h // 4)), int(rng.integers(w // 10, w // 4))
        y0, x0 = int(rng.integers(0, h - ch)), int(rng.integers(0, w - cw))
        x[y0:y0 + ch, x0:x0 + cw] = rng.uniform(0, 1)
    return np.asarray(np.clip(x, 0, 1) * 255.0, np.float32)


def _crop_sample(image: NDArray[np.uint8], kp: NDArray[np.float32], rng: np.random.Generator,
                 *, jitter: bool = True, flip: NDArray[np.intp] = _FLIP,
                 centre_on: int | None = None, shift: float = BODY_SHIFT
                 ) -> tuple[NDArray[np.float32], NDArray[np.float32], bool]:
    """A training crop (CROP_PX, CROP_PX) of ``image`` around the mouse whose keypoints
    (K, 2; NaN unknown; the first 14 ours) are ``kp``, as the detector would cut it, with
    random scale, shift (normal, ``shift`` times the side), rotation and mirror; centred
    on keypoint ``centre_on`` instead of the body, as the runtime's tail crop is
    (:data:`~mouse_lifter_ros.core.keypoints.TAIL_CROP`). ``flip`` (K,): each keypoint's
    mirror partner. Returns the crop, keypoints in it, and the mirror flag."""
    centre, size = body_box(kp)
    if centre_on is not None:
        centre = kp[centre_on].astype(np.float64)
    side = CROP_SCALE * size
    if jitter:
        side *= math.exp(float(np.clip(rng.normal(0, 0.12), -0.3, 0.3)))
        centre = centre + rng.normal(0, shift * side, 2)
    m = crop_matrix(centre, side, CROP_PX)  # crop px -> image px
    a = rng.uniform(-math.pi, math.pi) if jitter else 0.0
    mirror = bool(jitter and rng.random() < 0.5)
    o = (CROP_PX - 1) / 2.0
    c, s = math.cos(a), math.sin(a)
    rot = np.array([[c, -s, o - c * o + s * o], [s, c, o - s * o - c * o], [0, 0, 1]])
    if mirror:
        rot = rot @ np.array([[-1, 0, 2 * o], [0, 1, 0], [0, 0, 1]])
    full = np.vstack([m, [0, 0, 1]]) @ rot  # crop px -> image px
    crop = cv2.warpAffine(image, full[:2], (CROP_PX, CROP_PX),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inv = np.linalg.inv(full)
    out = kp @ inv[:2, :2].T + inv[:2, 2]
    if mirror:
        out = out[flip]
    return crop.astype(np.float32), out.astype(np.float32), mirror


def _kp_targets(kp: NDArray[np.float32], weight: NDArray[np.float32]
                ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Heatmaps (K, n, n), offsets (2K, n, n) and offset mask (K, n, n) for keypoints
    (K, 2) in crop px with peak heights ``weight`` (K,) (0: none in this crop)."""
    n = CROP_PX // KP_STRIDE
    cells = np.arange(n) * KP_STRIDE + (KP_STRIDE - 1) / 2.0
    k = len(kp)
    heat = np.zeros((k, n, n), np.float32)
    off = np.zeros((2 * k, n, n), np.float32)
    mask = np.zeros((k, n, n), np.float32)
    for i in range(k):
        if weight[i] <= 0 or not np.isfinite(kp[i]).all():
            continue
        dx = (kp[i, 0] - cells) / KP_STRIDE
        dy = (kp[i, 1] - cells) / KP_STRIDE
        if not (-0.5 <= kp[i, 0] / KP_STRIDE < n - 0.5 and -0.5 <= kp[i, 1] / KP_STRIDE
                < n - 0.5):
            continue
        g = np.exp(-0.5 * (dy[:, None] ** 2 + dx[None, :] ** 2) / 1.0 ** 2)
        heat[i] = weight[i] * g
        off[2 * i] = dx[None, :]
        off[2 * i + 1] = dy[:, None]
        mask[i] = (dy[:, None] ** 2 + dx[None, :] ** 2) <= 2.0 ** 2
    return heat, off, mask


def kp_batch(windows: dict[str, NDArray[Any]], real: RealLabels | None, n_synth: int,
             n_real: int, rng: np.random.Generator, synth_weight: NDArray[np.float32] | None
             = None, *, flip: NDArray[np.intp] = _FLIP,
             tails: dict[str, NDArray[Any]] | None = None, n_tail: int = 0,
             pool: NDArray[np.intp] | None = None) -> tuple[Tensor, ...]:
    """One training batch: images (B, 1, S, S) normalised, heatmaps, offsets, offset
    mask, and a per-keypoint loss weight (B, K): 0 where a real frame has no label, and
    ``synth_weight`` (K,) for synthetic samples (default 1): while fine-tuning, the
    keypoints that real labels supervise follow the labellers' placement, not ours.
    ``n_tail`` of the ``n_synth`` synthetic samples are tail crops of ``tails`` (tail
    windows, :func:`~.data2d.tail_window`), cut as the runtime cuts its tail crop.
    ``pool``: the indices of ``windows`` the other synthetic samples are drawn from,
    repeats included (:func:`mining_pool`); None: all alike.

    K is ``len(flip)`` (each keypoint's mirror partner): our 14, then any a lab added
    (``mouse-lifter finetune --add``), which synthetic samples have no position for;
    give them a ``synth_weight`` of 0."""
    k = len(flip)
    pad = k - len(KEYPOINTS)
    imgs, heats, offs, masks, lw = [], [], [], [], []
    for j in range(n_synth + n_real):
        if j < n_synth:
            tail = tails is not None and j >= n_synth - n_tail
            source = tails if tail and tails is not None else windows
            i = int(rng.integers(len(source["images"]))) if tail or pool is None else \
                int(pool[rng.integers(len(pool))])
            flags = np.concatenate([source["flags"][i], np.zeros(pad, np.uint8)])
            pts = np.concatenate([source["keypoints"][i], np.full((pad, 2), np.nan,
                                                                  np.float32)])
            crop, kp, mirror = _crop_sample(
                source["images"][i], pts, rng, flip=flip,
                centre_on=_TAIL_MID if tail else None, shift=TAIL_SHIFT if tail else BODY_SHIFT)
            flags = flags[flip] if mirror else flags
            peak = np.asarray(np.where(flags == 2, 1.0, np.where(flags == 1, 0.6, 0.0)),
                              np.float32)
            w = (np.ones(k, np.float32) if synth_weight is None else synth_weight.copy())
        else:
            assert real is not None
            i = int(rng.integers(len(real.images)))
            crop, kp, _ = _crop_sample(real.images[i], real.keypoints[i], rng, flip=flip)
            known = np.isfinite(kp).all(axis=1)
            peak = np.asarray(known, np.float32)
            w = np.asarray(known, np.float32)
        crop = photometric(crop, rng)
        h, o, m = _kp_targets(kp, peak)
        imgs.append((crop - MEAN) / STD)
        heats.append(h)
        offs.append(o)
        masks.append(m * w[:, None, None])
        lw.append(w)
    return (torch.from_numpy(np.stack(imgs)[:, None]), torch.from_numpy(np.stack(heats)),
            torch.from_numpy(np.stack(offs)), torch.from_numpy(np.stack(masks)),
            torch.from_numpy(np.stack(lw)))


def kp_loss(net: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    img, heat, off, mask, lw = batch
    logits, pred_off = net(img)
    pix = nn.functional.binary_cross_entropy_with_logits(logits, heat, reduction="none")
    pix = pix * (1.0 + 20.0 * heat) * lw[:, :, None, None]
    l_heat = pix.sum() / (lw.sum() * 10.0 + 1e-6)
    m2 = mask.repeat_interleave(2, dim=1)
    l_off = (torch.abs(pred_off - off) * m2).sum() / (m2.sum() + 1e-6)
    return l_heat + l_off


# ---------------------------------------------------------------------------- detector


def _det_targets(target: NDArray[np.float32]) -> tuple[NDArray[np.float32], ...]:
    """Centre heatmap (1, h, w), box (3, h, w) and box mask (1, h, w) for
    ``[present, cx, cy, size]`` in detector input px."""
    w, h = DETECTOR_INPUT[0] // DET_STRIDE, DETECTOR_INPUT[1] // DET_STRIDE
    heat = np.zeros((1, h, w), np.float32)
    box = np.zeros((3, h, w), np.float32)
    mask = np.zeros((1, h, w), np.float32)
    if target[0] > 0:
        gx = np.arange(w) * DET_STRIDE + (DET_STRIDE - 1) / 2.0
        gy = np.arange(h) * DET_STRIDE + (DET_STRIDE - 1) / 2.0
        dx = (target[1] - gx) / DET_STRIDE
        dy = (target[2] - gy) / DET_STRIDE
        d2 = dy[:, None] ** 2 + dx[None, :] ** 2
        heat[0] = np.exp(-0.5 * d2)
        box[0] = dx[None, :]
        box[1] = dy[:, None]
        box[2] = math.log(max(target[3], 1.0) / DET_STRIDE)
        mask[0] = d2 <= 1.5 ** 2
    return heat, box, mask


def det_batch(frames: dict[str, NDArray[Any]], real: list[tuple[NDArray[np.uint8],
              NDArray[np.float32]]], n_synth: int, n_real: int, rng: np.random.Generator,
              pool: NDArray[np.intp] | None = None) -> tuple[Tensor, ...]:
    """A detector batch: ``n_synth`` synthetic frames (drawn uniformly from ``pool``, the
    frame indices with repeats, or from all frames) and ``n_real`` real ones."""
    imgs, heats, boxes, masks = [], [], [], []
    for j in range(n_synth + n_real):
        if j < n_synth:
            i = (int(pool[int(rng.integers(len(pool)))]) if pool is not None
                 else int(rng.integers(len(frames["images"]))))
            img, tg = frames["images"][i], frames["targets"][i].copy()
        else:
            img, tg = real[int(rng.integers(len(real)))]
            tg = tg.copy()
        img = img.astype(np.float32)
        ww = img.shape[1]
        if rng.random() < 0.5:  # mirror the content (the padding stays right/bottom)
            valid_w = int((img.max(axis=0) > 0).nonzero()[0].max(initial=ww - 1)) + 1
            img[:, :valid_w] = img[:, :valid_w][:, ::-1]
            tg[1] = valid_w - 1 - tg[1]
        pad = img == 0
        img = photometric(img, rng)
        img[pad] = 0.0
        h, b, m = _det_targets(tg)
        imgs.append((img - MEAN) / STD)
        heats.append(h)
        boxes.append(b)
        masks.append(m)
    return (torch.from_numpy(np.stack(imgs)[:, None]), torch.from_numpy(np.stack(heats)),
            torch.from_numpy(np.stack(boxes)), torch.from_numpy(np.stack(masks)))


def detector_scorer(detector: Path) -> Detector:
    """The detector (its YAML) that scores the frames for mining
    (:func:`detector_errors`). Raises :class:`ParameterError` saying what is wrong
    when it cannot be read."""
    try:
        return Detector(detector, device="cpu")
    except ModelError as e:
        raise ParameterError(f"mine_with={detector}: {e}") from e


def detector_errors(det: Detector, frames: dict[str, NDArray[Any]], *,
                    threshold: float | None = None) -> NDArray[np.float64]:
    """How badly a detector (from :func:`detector_scorer`) does on each synthetic frame
    (N,): the centre error over the mouse's size plus ``|log(size ratio)|``; 3 for a
    mouse missed or one found in a frame without it; 0 for an empty frame left empty.
    ``threshold`` overrides the detector's own."""
    limit = det.spec.threshold if threshold is None else threshold
    err = np.zeros(len(frames["images"]))
    for i, (img, tg) in enumerate(zip(frames["images"], frames["targets"], strict=True)):
        found = det(img)  # the frames are letterboxed already: the letterbox keeps them
        present = tg[0] >= 0.5
        if not present or found.confidence < limit:
            err[i] = 3.0 if (found.confidence >= limit) != present else 0.0
            continue
        true = max(float(tg[3]), 1.0)
        err[i] = (math.hypot(found.centre[0] - tg[1], found.centre[1] - tg[2]) / true
                  + abs(math.log(found.size / true)))
    return err


#: In :func:`keypoint_errors`, the most one keypoint counts (input px), and what one
#: under the confidence cut counts: four heatmap cells.
MISSED_PX = 4.0 * KP_STRIDE


def trained_network_problems(spec: ModelSpec) -> list[str]:
    """What keeps a 2D model from being one of this project's networks (one train-2d
    or finetune wrote), whose inputs, outputs and first 14 keypoints training reads
    into its own: a phrase per problem, none when it is one."""
    problems = []
    if tuple(spec.keypoints[:len(KEYPOINTS)]) != KEYPOINTS:
        problems.append(f"its keypoints start {list(spec.keypoints[:3])}..., ours "
                        f"{list(KEYPOINTS[:3])}...")
    i, o = spec.input, spec.output
    if (i.width, i.height, i.channels, i.layout) != (CROP_PX, CROP_PX, 1, "NCHW") or \
            tuple(i.mean) != (MEAN,) or tuple(i.std) != (STD,):
        problems.append(f"input {i.width}x{i.height}x{i.channels} {i.layout} mean {i.mean} "
                        f"std {i.std}; train-2d's is {CROP_PX}x{CROP_PX}x1 NCHW mean "
                        f"[{MEAN}] std [{STD}]")
    if (o.kind, o.stride) != ("heatmap_offset", KP_STRIDE):
        problems.append(f"output {o.kind} stride {o.stride}; train-2d's is heatmap_offset "
                        f"stride {KP_STRIDE}")
    if spec.crop != "detector" or spec.detector is None:
        problems.append("no detector (crop mode full)")
    return problems


def keypoint_scorer(model: Path) -> KeypointModel:
    """The 2D model (its YAML) whose keypoint network scores the windows for mining
    (:func:`keypoint_errors`). Raises :class:`ParameterError` naming every problem
    when it cannot be read or is not one train-2d or finetune wrote."""
    try:
        net = KeypointModel(model, device="cpu")
    except ModelError as e:
        raise ParameterError(f"mine_keypoints_with={model}: {e}") from e
    if problems := trained_network_problems(net.spec):
        raise ParameterError(f"mine_keypoints_with={model}: scoring needs a model train-2d "
                             "or finetune wrote: " + "; ".join(problems))
    return net


def keypoint_errors(net: KeypointModel, windows: dict[str, NDArray[Any]]
                    ) -> NDArray[np.float64]:
    """How badly a 2D model's keypoint network (from :func:`keypoint_scorer`; run once
    per crop, as :meth:`~mouse_lifter_ros.core.keypoints.KeypointModel.crop_keypoints`)
    does on each synthetic keypoint window (N,): on the crop cut around the body as the
    detector would (no augmentation), the mean over the window's visible keypoints of
    the distance (input px) from the truth, at most :data:`MISSED_PX`, which a keypoint
    under the confidence cut counts as; 0 for a window with no visible keypoint."""
    rng = np.random.default_rng(0)  # not drawn from: no augmentation
    err = np.zeros(len(windows["images"]))
    items = zip(windows["images"], windows["keypoints"], windows["flags"], strict=True)
    for i, (img, kp, flags) in enumerate(tqdm(items, total=len(err), desc="score windows",
                                              unit="window")):
        seen = flags == 2
        if not seen.any():
            continue
        crop, truth, _ = _crop_sample(img, kp, rng, jitter=False)
        xy, conf = net.crop_keypoints(np.asarray(np.clip(crop, 0, 255), np.uint8))
        k = len(truth)  # a fine-tuned model's added keypoints come after ours
        d = np.minimum(np.linalg.norm(xy[:k] - truth, axis=1), MISSED_PX)
        err[i] = float(np.where(conf[:k] >= P_CUTOFF, d, MISSED_PX)[seen].mean())
    return err


def mining_problem(fraction: float, repeat: int) -> str | None:
    """What is wrong with hard-example mining's ``fraction`` and ``repeat``, or None."""
    if 0.0 < fraction <= 1.0 and repeat >= 0:
        return None
    return f"mine_fraction={fraction} (0 < f <= 1), mine_repeat={repeat} (>= 0)"


def hard_count(n: int, fraction: float) -> int:
    """How many of ``n`` samples are the worst ``fraction``: at least one."""
    return max(1, round(fraction * n))


def mining_pool(errors: NDArray[np.float64], fraction: float, repeat: int
                ) -> NDArray[np.intp]:
    """Every frame index once, plus the worst ``fraction`` of them ``repeat`` more times."""
    if (problem := mining_problem(fraction, repeat)) is not None:
        raise ParameterError(problem)
    worst = np.argsort(-errors, kind="stable")[:hard_count(len(errors), fraction)]
    return np.concatenate([np.arange(len(errors))] + [np.sort(worst)] * repeat)


def det_loss(net: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    img, heat, box, mask = batch
    logits, pred = net(img)
    pix = nn.functional.binary_cross_entropy_with_logits(logits, heat, reduction="none")
    l_heat = (pix * (1.0 + 10.0 * heat)).mean() * 10.0
    l_box = (torch.abs(pred - box) * mask).sum() / (mask.sum() * 3 + 1e-6)
    return l_heat + l_box


# -------------------------------------------------------------------------- training


def fit_network(net: nn.Module, make_batch: MakeBatch,
                loss_fn: Callable[[nn.Module, tuple[Tensor, ...]], Tensor], steps: int,
                lr: float, rng: np.random.Generator, desc: str, *, device: str = "cpu",
                loader_workers: int = 0, amp: bool = False,
                frozen_bn: bool = False) -> list[float]:
    """Train ``net`` for ``steps`` batches (one-cycle AdamW) on ``device`` (``cpu`` or
    ``cuda``); it is back on the CPU, in eval mode, on return. The batches are built by
    ``loader_workers`` processes (0: in this one; :class:`~.loader.BatchLoader`), each
    from its own generator spawned from ``rng``, so the result does not depend on their
    number. ``amp``: mixed precision (float16 with a gradient scaler) on cuda; ignored on
    the CPU. ``frozen_bn`` keeps the batch norms in eval mode (their running statistics,
    not the batch's), as fine-tuning from weights read back from ONNX needs. Returns the
    losses."""
    prepare_device(device)
    net.to(device)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr,
                            weight_decay=1e-4)
    # OneCycleLR divides by pct_start * steps - 1: 20 steps at 0.05 would divide by 0
    pct = 0.05 if round(0.05 * steps, 9) != 1.0 else 0.1
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1),
                                                pct_start=pct)
    scaler = (torch.amp.GradScaler("cuda") if amp and torch.device(device).type == "cuda"
              else None)
    net.train()
    if frozen_bn:
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
    losses: list[float] = []
    pending: list[Tensor] = []  # read back 25 at a time: no wait for the device each step
    seeds = np.random.SeedSequence(int(rng.integers(2**63))).spawn(steps)
    with BatchLoader(make_batch, seeds, workers=loader_workers, device=device) as batches:
        bar = tqdm(batches, total=steps, desc=desc, unit="batch")
        for step, batch in enumerate(bar):
            pending.append(_step(net, opt, sched, loss_fn, batch, scaler))
            if len(pending) == 25 or step + 1 == steps:
                losses += torch.stack(pending).tolist()
                pending.clear()
                bar.set_postfix(loss=f"{np.mean(losses[-25:]):.4f}")
    net.eval()
    net.to("cpu")
    return losses


def _step(net: nn.Module, opt: torch.optim.Optimizer, sched: Any,
          loss_fn: Callable[[nn.Module, tuple[Tensor, ...]], Tensor],
          batch: tuple[Tensor, ...], scaler: torch.amp.GradScaler | None) -> Tensor:
    """One optimiser step; returns the loss (detached, on the device)."""
    opt.zero_grad()
    if scaler is None:
        loss = loss_fn(net, batch)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    else:
        with torch.autocast("cuda", dtype=torch.float16):
            loss = loss_fn(net, batch)
        scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        scaler.step(opt)
        scaler.update()
    sched.step()
    return loss.detach().float()


def det_sample(image: NDArray[np.uint8], kp: NDArray[np.float32] | None
               ) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """A detector sample of a real frame (H, W): its letterboxed canvas and the target
    ``[present, cx, cy, size]`` in canvas px from the mouse's keypoints ``kp`` (K, 2)
    px, or ``[0, 0, 0, 0]`` for a frame without the mouse (``kp`` None)."""
    canvas, s = letterbox(image)
    if kp is None:
        return canvas, np.zeros(4, np.float32)
    centre, size = body_box(kp)
    c = (centre + 0.5) * s - 0.5
    return canvas, np.array([1.0, c[0], c[1], size * s], np.float32)


def real_det_samples(real: RealLabels) -> list[tuple[NDArray[np.uint8], NDArray[np.float32]]]:
    return [det_sample(img, kp) for img, kp in zip(real.images, real.keypoints, strict=True)]


def write_model_yaml(out: Path, *, name: str, view: str = "top", notes: dict[str, Any],
                     tail_crop: bool = False) -> Path:
    """The YAML descriptions of a trained pair: ``default.yaml`` and ``detector.yaml``;
    ``view``: the side the camera saw the mouse from in training (top or bottom);
    ``tail_crop``: the keypoint network learnt tail crops, and the runtime cuts one."""
    det = {"name": f"{name}-detector", "onnx": "detector.onnx", "kind": "centre_size",
           "input": {"width": DETECTOR_INPUT[0], "height": DETECTOR_INPUT[1], "channels": 1,
                     "mean": [MEAN], "std": [STD]},
           "stride": DET_STRIDE, "threshold": 0.5}
    kp = {"name": name, "onnx": "keypoints.onnx", "view": view, "keypoints": list(KEYPOINTS),
          "skeleton": [[KEYPOINTS[a], KEYPOINTS[b]] for a, b in SKELETON_EDGES],
          "input": {"width": CROP_PX, "height": CROP_PX, "channels": 1, "layout": "NCHW",
                    "mean": [MEAN], "std": [STD]},
          "output": {"kind": "heatmap_offset", "heatmap": "heatmaps", "offset": "offsets",
                     "stride": KP_STRIDE, "grid_offset": (KP_STRIDE - 1) / 2.0,
                     "offset_scale": float(KP_STRIDE), "activation": "sigmoid"},
          "crop": {"mode": "detector", "detector": "detector.yaml", "scale": CROP_SCALE,
                   "box_keypoints": list(BODY_KEYPOINTS)},
          # also run the mirrored crop and average (about 1 ms more on a 2-core CPU;
          # held-out mean error 3.9 -> 3.6 px): set false for the lowest latency
          "flip_test": True,
          # the network learns crops at any angle: the runtime may run them turned too
          "turn_test": True,
          **({"tail_crop": True} if tail_crop else {}),
          "training": notes}
    (out / "detector.yaml").write_text(yaml.safe_dump(det, sort_keys=False))
    path = out / "default.yaml"
    path.write_text("# The default 2D model of mouse_lifter_ros (see MODEL_CARD.md).\n"
                    + yaml.safe_dump(kp, sort_keys=False))
    return path


def split_labels(names: list[str], holdout_last: int, gap: int) -> tuple[list[str], list[str]]:
    """Training and held-out image names: the last ``holdout_last`` labelled frames (in
    the file's order) are held out and the ``gap`` before them are not used at all, so
    that no training frame is a near neighbour of a test frame."""
    if holdout_last + gap >= len(names):
        raise ParameterError(f"holdout_last={holdout_last} + gap={gap}: only {len(names)} "
                             "labelled frames")
    cut = len(names) - holdout_last
    return names[:cut - gap], names[cut:]


def phase_rng(seed: int, phase: int) -> np.random.Generator:
    """Each phase draws from its own stream, so a resumed run equals a full one."""
    torch.manual_seed(seed * 1000 + phase)
    return np.random.default_rng(np.random.SeedSequence([seed, phase]))


def train_2d(cfg: Train2DConfig, *, resume: bool = False) -> dict[str, Any]:
    """Run every step; write the models under ``cfg.out`` (and ``cfg.out/synthetic_only``).

    With ``resume``, the synthetic-only networks saved by an earlier run with the same
    config (``synthetic_only/*.pt``) are loaded instead of trained again. ``cfg.parts``
    picks the networks to train (the other's files in ``cfg.out`` are left as they are).
    Every phase draws from its own seeded stream, so either way the result is the same
    as a full run's.
    """
    problems = [p for v in (cfg.view, *cfg.detector_views)
                 if (p := view_problem(v)) is not None]
    if not 0.0 <= cfg.dark_near <= 1.0:
        problems.append(f"--dark-near {cfg.dark_near}: a share, 0 to 1")
    if not 0.0 <= cfg.synth_weight_labelled <= 1.0:
        problems.append(f"--synth-weight {cfg.synth_weight_labelled}: 0 to 1")
    if (cfg.mine_with or cfg.mine_keypoints_with) and (
            problem := mining_problem(cfg.mine_fraction, cfg.mine_repeat)):
        problems.append(problem)
    if set(cfg.parts) - {"detector", "keypoints"} or not cfg.parts:
        problems.append(f"--parts {','.join(cfg.parts)}: detector and/or keypoints")
    n_synthetic = cfg.batch - (cfg.real_per_batch if cfg.labels is not None else 0)
    if (cfg.tail_windows, cfg.tail_per_batch) != (0, 0) and not (
            cfg.tail_windows > 0 and 1 <= cfg.tail_per_batch <= n_synthetic):
        problems.append(f"--tail-windows {cfg.tail_windows} and --tail-per-batch "
                        f"{cfg.tail_per_batch}: both 0, or windows > 0 and 1 to "
                        f"{n_synthetic} crops a batch (its synthetic samples)")
    if problems:
        raise ParameterError("train-2d: " + "; ".join(problems))
    # the scoring networks are read before any rendering: a bad one costs nothing
    det_scorer = (detector_scorer(cfg.mine_with)
                  if cfg.mine_with is not None and "detector" in cfg.parts else None)
    scorer = (keypoint_scorer(cfg.mine_keypoints_with)
              if cfg.mine_keypoints_with is not None and "keypoints" in cfg.parts else None)
    device = training_device("train-2d", cfg.device, cfg.loader_workers)
    torch.set_num_threads(cfg.threads)
    cv2.setNumThreads(1)
    cfg.out.mkdir(parents=True, exist_ok=True)
    synth_dir = cfg.out / "synthetic_only"
    synth_dir.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    # each network's synthetic data is rendered only when that network trains
    frames: dict[str, NDArray[Any]] = {}
    if "detector" in cfg.parts:
        frames = synth_detector_frames(cfg.detector_frames, cfg.seed, view=cfg.view,
                                       workers=cfg.workers, cache=cfg.cache,
                                       dark_near=cfg.dark_near)
    for other in (v for v in cfg.detector_views if v != cfg.view and frames):
        more = synth_detector_frames(cfg.detector_frames, cfg.seed, view=other,
                                     workers=cfg.workers, cache=cfg.cache,
                                     dark_near=cfg.dark_near)
        frames = {k: np.concatenate([frames[k], more[k]]) for k in frames}
    windows: dict[str, NDArray[Any]] = {}
    tails: dict[str, NDArray[Any]] | None = None
    if "keypoints" in cfg.parts:
        windows = synth_keypoint_windows(cfg.windows, cfg.seed, view=cfg.view,
                                         workers=cfg.workers, cache=cfg.cache)
        if cfg.tail_windows:
            tails = synth_tail_windows(cfg.tail_windows, cfg.seed, view=cfg.view,
                                       workers=cfg.workers, cache=cfg.cache)
    nt = cfg.tail_per_batch
    real = None
    holdout: list[str] = []
    if cfg.labels is not None:
        sets = read_labelled(cfg.labels)
        names = [n for s in sets for n in s.image_names]
        train_names, holdout = split_labels(names, cfg.holdout_last, cfg.gap)
        real = real_labels(select_frames(sets, train_names), cfg.label_map)
    log: dict[str, Any] = {"config": {k: str(v) if isinstance(v, Path) else v
                                      for k, v in asdict(cfg).items()}, "device": device}
    fit = partial(fit_network, device=device, loader_workers=cfg.loader_workers, amp=cfg.amp)
    bs = cfg.batch
    phase_rng(cfg.seed, 0)
    det = DetectorNet()
    kp = KeypointNet(len(KEYPOINTS))
    nets: dict[str, tuple[nn.Module, str, str, tuple[int, int, int, int]]] = {
        "detector": (det, "centre", "box", (1, 1, DETECTOR_INPUT[1], DETECTOR_INPUT[0])),
        "keypoints": (kp, "heatmaps", "offsets", (1, 1, CROP_PX, CROP_PX))}
    from_onnx = set()  # their batch norms carry folded weights: kept in eval mode
    for part, init in (("detector", cfg.init_detector), ("keypoints", cfg.init_keypoints)):
        if init is not None:
            if load_start_weights(nets[part][0], init):
                from_onnx.add(part)
            log[f"{part}_init_sha256"] = weights_sha256(init)
    pool = None
    if det_scorer is not None:
        errors = detector_errors(det_scorer, frames)
        pool = mining_pool(errors, cfg.mine_fraction, cfg.mine_repeat)
        log["mining"] = {"detector_sha256": weights_sha256(det_scorer.spec.onnx),
                         "error_median": float(np.median(errors)),
                         "missed_or_false": int((errors == 3.0).sum()),
                         "hard_frames": hard_count(len(errors), cfg.mine_fraction)}
    kp_pool = None
    if scorer is not None:
        errors = keypoint_errors(scorer, windows)
        kp_pool = mining_pool(errors, cfg.mine_fraction, cfg.mine_repeat)
        hard = hard_count(len(errors), cfg.mine_fraction)
        log["keypoint_mining"] = {
            "keypoints_sha256": weights_sha256(scorer.spec.onnx),
            "error_median_px": float(np.median(errors)), "hard_windows": hard,
            "hard_from_px": float(np.sort(errors)[-hard]), "repeat": cfg.mine_repeat}
    synthetic = {
        "detector": lambda: fit(det, lambda r: det_batch(frames, [], bs, 0, r, pool),
                                det_loss, cfg.det_steps, cfg.lr, phase_rng(cfg.seed, 1),
                                "detector (synthetic)", frozen_bn="detector" in from_onnx),
        "keypoints": lambda: fit(kp, lambda r: kp_batch(windows, None, bs, 0, r, tails=tails,
                                                        n_tail=nt, pool=kp_pool), kp_loss,
                                 cfg.kp_steps, cfg.lr, phase_rng(cfg.seed, 2),
                                 "keypoints (synthetic)", frozen_bn="keypoints" in from_onnx)}
    for part in cfg.parts:
        net, out1, out2, shape = nets[part]
        pt = synth_dir / f"{part}.pt"
        if resume and pt.exists():
            net.load_state_dict(torch.load(pt))
            net.eval()
            log[f"{part}_resumed_from"] = str(pt)
        else:
            log[f"{part}_loss"] = synthetic[part]()[-100:]
            torch.save(net.state_dict(), pt)
        export_onnx(net, str(synth_dir / f"{part}.onnx"), shape, output_names=(out1, out2))
    notes: dict[str, Any] = {"seed": cfg.seed, "view": cfg.view,
                             "synthetic_windows": cfg.windows,
                             **({"tail_windows": cfg.tail_windows,
                                 "tail_per_batch": cfg.tail_per_batch} if tails else {}),
                             "synthetic_detector_frames": cfg.detector_frames,
                             **({"dark_near": cfg.dark_near} if cfg.dark_near else {}),
                             "detector_views": [cfg.view, *cfg.detector_views],
                             "real_frames": 0, "holdout": holdout,
                             **{f"{part}_init_sha256": log[f"{part}_init_sha256"]
                                for part in ("keypoints", "detector")
                                if f"{part}_init_sha256" in log},
                             **({"keypoint_mining": log["keypoint_mining"]}
                                if "keypoint_mining" in log else {})}
    suffix = view_suffix(cfg.view)
    write_model_yaml(synth_dir, name=f"mouse-lifter-2d{suffix}-synthetic-only",
                     view=cfg.view, notes=notes, tail_crop=tails is not None)

    if real is not None and cfg.finetune_steps > 0:
        nr = cfg.real_per_batch
        if "detector" in cfg.parts:
            rd = real_det_samples(real)
            log["det_ft_loss"] = fit(
                det, lambda r: det_batch(frames, rd, bs - nr, nr, r, pool), det_loss,
                cfg.det_real_steps, cfg.lr / 4, phase_rng(cfg.seed, 3),
                "detector (+ real)", frozen_bn="detector" in from_onnx)[-100:]
        if "keypoints" in cfg.parts:
            labelled = np.isfinite(real.keypoints).all(axis=2).any(axis=0)
            sw = np.where(labelled, cfg.synth_weight_labelled, 1.0).astype(np.float32)
            log["kp_ft_loss"] = fit(
                kp, lambda r: kp_batch(windows, real, bs - nr, nr, r, sw, tails=tails,
                                       n_tail=nt, pool=kp_pool), kp_loss,
                cfg.finetune_steps, cfg.lr / 2, phase_rng(cfg.seed, 4),
                "keypoints (+ real)", frozen_bn="keypoints" in from_onnx)[-100:]
        notes = {**notes, "real_frames": len(real.names), "real_labels": str(cfg.labels),
                 "real_train_names": [Path(n).name for n in real.names]}
    for part in cfg.parts:
        net, out1, out2, shape = nets[part]
        export_onnx(net, str(cfg.out / f"{part}.onnx"), shape, output_names=(out1, out2))
    write_model_yaml(cfg.out, name=f"mouse-lifter-2d{suffix}", view=cfg.view, notes=notes,
                     tail_crop=tails is not None)
    log["seconds"] = time.perf_counter() - t0
    (cfg.out / "training_log.json").write_text(json.dumps(log, indent=1))
    return log
