"""Train the depth network on synthetic crops (``mouse-lifter train-depth``).

1. draw (or load from the cache) synthetic mouse crops with height maps
   (:mod:`mouse_lifter_ros.training.datadepth`); the last ``val`` are held out;
2. train :class:`~mouse_lifter_ros.training.nets.DepthNet` with any rotation, mirror and
   the 2D stage's photometric augmentation;
3. report the held-out error, export ONNX beside its YAML description.

Everything draws from ``seed``; on the same machine, device and torch build the same
command gives the same weights, whatever the number of processes building the batches.
"""

from __future__ import annotations

import json
import os
import time
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

from mouse_lifter_ros.core.depth import CROP_PX, DEPTH_UNIT
from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.core.keypoints import shipped_model
from mouse_lifter_ros.core.views import view_suffix
from mouse_lifter_ros.training.datadepth import synth_depth_crops
from mouse_lifter_ros.training.loader import default_loader_workers, training_device
from mouse_lifter_ros.training.nets import (
    DepthNet,
    count_parameters,
    export_onnx,
    load_start_weights,
)
from mouse_lifter_ros.training.train2d import (
    MEAN,
    STD,
    fit_network,
    phase_rng,
    photometric,
    weights_sha256,
)

STRIDE = 4
#: Mouse cells at least this high over the floor, metres, are *raised* (a rearing or
#: stretched-up head and chest; a walking back is 30-40 mm): the held-out figures report
#: them apart, and ``raised_weight`` weights their height loss.
RAISED_M = 0.05


@dataclass
class TrainDepthConfig:
    """What ``mouse-lifter train-depth`` does. Counts are samples; steps are batches."""

    out: Path
    seed: int = 0
    view: str = "top"
    """Where the synthetic camera is: ``top`` (above the arena) or ``bottom`` (under its
    clear floor); the model YAML records it and the depth node refuses a calibration of
    the other side."""
    crops: int = 20000
    val: int = 500
    steps: int = 7000
    batch: int = 32
    lr: float = 2e-3
    workers: int = 2
    threads: int = 2
    cache: Path | None = None
    init: Path | None = None
    """Weights to start from instead of random ones: ``depth.pt`` of an earlier run, or a
    model's ``depth.onnx`` (e.g. the shipped top-view model's, for a bottom-view one)."""
    device: str = "auto"
    """Where the network trains: cpu, cuda, or auto (cuda when PyTorch sees one)."""
    loader_workers: int = field(default_factory=default_loader_workers)
    """Processes building the batches (0: the main process); the result does not
    depend on it."""
    amp: bool = False
    """Mixed precision on cuda (ignored on the CPU)."""
    raised_weight: float = 1.0
    """Weight of the height loss on raised mouse cells (:data:`RAISED_M`) against the
    other mouse cells' 1."""


def _augment(img: NDArray[np.uint8], height: NDArray[Any], cover: NDArray[np.uint8],
             rng: np.random.Generator | None) -> tuple[NDArray[np.float32], ...]:
    """Rotate (any angle) and mirror about the crop centre; photometric changes."""
    x = img.astype(np.float32)
    h = height.astype(np.float32)
    m = cover.astype(np.float32) / 255.0
    if rng is not None:
        o = (CROP_PX - 1) / 2.0
        rot = cv2.getRotationMatrix2D((o, o), float(rng.uniform(-180, 180)), 1.0)
        if rng.random() < 0.5:
            rot = rot @ np.array([[-1, 0, 2 * o], [0, 1, 0], [0, 0, 1]], np.float64)
        size = (CROP_PX, CROP_PX)
        x = cv2.warpAffine(x, rot, size, flags=cv2.INTER_LINEAR)
        h = cv2.warpAffine(h * m, rot, size, flags=cv2.INTER_LINEAR)
        m = cv2.warpAffine(m, rot, size, flags=cv2.INTER_LINEAR)
        h = np.where(m > 1e-3, h / np.maximum(m, 1e-3), 0.0).astype(np.float32)
        x = photometric(x, rng)
    n = CROP_PX // STRIDE
    cover_t = cv2.resize(m, (n, n), interpolation=cv2.INTER_AREA)
    hsum = cv2.resize(h * m, (n, n), interpolation=cv2.INTER_AREA)
    h_t = np.where(cover_t > 1e-3, hsum / np.maximum(cover_t, 1e-3), 0.0)
    return ((x - MEAN) / STD, (h_t / DEPTH_UNIT).astype(np.float32),
            cover_t.astype(np.float32))


def depth_batch(data: dict[str, NDArray[Any]], idx: NDArray[np.intp],
                rng: np.random.Generator | None) -> tuple[Tensor, ...]:
    """Images (B, 1, S, S), height targets (B, 1, S/4, S/4) in DEPTH_UNIT metres and
    mouse cover (B, 1, S/4, S/4) for crops ``idx`` (augmented when ``rng`` is given)."""
    out = [_augment(data["images"][i], data["heights"][i], data["masks"][i], rng)
           for i in idx]
    return tuple(torch.from_numpy(np.stack([o[k] for o in out])[:, None]) for k in range(3))


def depth_loss(net: nn.Module, batch: tuple[Tensor, ...], raised_weight: float = 1.0
               ) -> Tensor:
    """Mask cross-entropy plus 4 x the mean absolute height error over mouse cells, those
    :data:`RAISED_M` or higher weighted ``raised_weight``."""
    img, height, cover = batch
    pred_h, logits = net(img)
    l_mask = nn.functional.binary_cross_entropy_with_logits(logits, cover)
    w = (cover > 0.5).float()
    if raised_weight != 1.0:
        w = w * (1.0 + (raised_weight - 1.0) * (height >= RAISED_M / DEPTH_UNIT).float())
    l_h = (torch.abs(pred_h - height) * w).sum() / (w.sum() + 1e-6)
    return l_mask + 4.0 * l_h


def evaluate(net: nn.Module, data: dict[str, NDArray[Any]], idx: NDArray[np.intp]
             ) -> dict[str, float | None]:
    """Held-out figures: mean and median |height error| on mouse cells (mm), mask IoU,
    and on the raised cells (:data:`RAISED_M`) their mean |error| and mean signed error
    (mm; negative: read too low; None where there are none)."""
    errs, truth, inter, union = [], [], 0.0, 0.0
    with torch.no_grad():
        for k in range(0, len(idx), 64):
            img, height, cover = depth_batch(data, idx[k:k + 64], None)
            pred_h, logits = net(img)
            w = cover > 0.5
            errs.append(((pred_h - height)[w] * DEPTH_UNIT * 1e3).numpy())
            truth.append((height[w] * DEPTH_UNIT).numpy())
            p = logits > 0
            inter += float((p & w).sum())
            union += float((p | w).sum())
    e, h = np.concatenate(errs), np.concatenate(truth)
    raised = e[h >= RAISED_M]
    return {"height_mae_mm": float(np.abs(e).mean()),
            "height_median_mm": float(np.median(np.abs(e))),
            "mask_iou": inter / max(union, 1.0),
            "raised_mae_mm": float(np.abs(raised).mean()) if raised.size else None,
            "raised_bias_mm": float(raised.mean()) if raised.size else None}


def write_depth_yaml(out: Path, *, view: str = "top", notes: dict[str, Any]) -> Path:
    """The YAML description of a trained depth network (``default.yaml``) that saw the
    mouse from ``view``."""
    # the view's shipped 2D model's detector places the crop; a path relative to this file
    detector = os.path.relpath(shipped_model(view).parent / "detector.yaml", out)
    name = f"mouse-lifter-depth{view_suffix(view)}"
    spec = {"name": name, "onnx": "depth.onnx", "detector": detector,
            "input": {"width": CROP_PX, "height": CROP_PX, "channels": 1, "mean": [MEAN],
                      "std": [STD]},
            "output": {"height": "height", "mask": "mask", "stride": STRIDE,
                       "unit": DEPTH_UNIT},
            "crop_scale": 1.6, "mask_threshold": 0.0, "view": view, "training": notes}
    path = out / "default.yaml"
    head = ("# The default depth model of mouse_lifter_ros (see MODEL_CARD.md). Written by\n"
            "# mouse-lifter train-depth. Output: per stride-4 cell of the crop, the height\n"
            "# of the mouse's surface over the floor (times unit: metres) and mouse logits.\n")
    path.write_text(head + yaml.safe_dump(spec, sort_keys=False, width=100))
    return path


def train_depth(cfg: TrainDepthConfig) -> dict[str, Any]:
    """Render (or load), train, evaluate and export under ``cfg.out``."""
    problems = []
    if cfg.crops <= cfg.val:
        problems.append(f"--crops {cfg.crops} must exceed --val {cfg.val}")
    if not cfg.raised_weight > 0.0:
        problems.append(f"--raised-weight {cfg.raised_weight}: above 0 (1: as the others)")
    if problems:
        raise ParameterError("train-depth: " + "; ".join(problems))
    device = training_device("train-depth", cfg.device, cfg.loader_workers)
    torch.set_num_threads(cfg.threads)
    cv2.setNumThreads(1)
    cfg.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = synth_depth_crops(cfg.crops, cfg.seed, view=cfg.view, workers=cfg.workers,
                             cache=cfg.cache)
    n_train = cfg.crops - cfg.val
    phase_rng(cfg.seed, 0)
    net = DepthNet()
    from_onnx = cfg.init is not None and load_start_weights(net, cfg.init)
    bs = cfg.batch
    losses = fit_network(net, lambda r: depth_batch(data, r.integers(0, n_train, bs), r),
                         partial(depth_loss, raised_weight=cfg.raised_weight),
                         cfg.steps, cfg.lr, phase_rng(cfg.seed, 5),
                         "depth (synthetic)", device=device,
                         loader_workers=cfg.loader_workers, amp=cfg.amp,
                         frozen_bn=from_onnx)
    val = evaluate(net, data, np.arange(n_train, cfg.crops))
    export_onnx(net, str(cfg.out / "depth.onnx"), (1, 1, CROP_PX, CROP_PX),
                output_names=("height", "mask"))
    notes = {"seed": cfg.seed, "view": cfg.view, "synthetic_crops": cfg.crops,
             "held_out_crops": cfg.val,
             "steps": cfg.steps, "lr": cfg.lr, "parameters": count_parameters(net),
             **({"raised_weight": cfg.raised_weight} if cfg.raised_weight != 1.0 else {}),
             **({"init_sha256": weights_sha256(cfg.init)} if cfg.init is not None else {}),
             "held_out": {k: None if v is None else round(v, 4) for k, v in val.items()}}
    write_depth_yaml(cfg.out, view=cfg.view, notes=notes)
    log = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
           "device": device, "loss": losses[-100:], "held_out": val,
           "seconds": time.perf_counter() - t0}
    (cfg.out / "training_log.json").write_text(json.dumps(log, indent=1))
    torch.save(net.state_dict(), cfg.out / "depth.pt")
    return log


