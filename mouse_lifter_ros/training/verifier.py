"""Train the detector's verifier (``mouse-lifter train-verifier``): is this crop a mouse?

The detector sees the frame at 160 x 128 px, where a dark cup, a tube, a pellet or a
reflection can look as much like a small mouse as the mouse does. The verifier looks at
each of the detector's peaks again, at :data:`~..core.keypoints.VERIFIER_PX` px over
:data:`~..core.keypoints.VERIFIER_SCALE` detected sizes, and says how much it looks like a
mouse; :meth:`~..core.keypoints.Detector.locate` takes the peak with the highest detector
confidence x verifier probability.

Crops come from synthetic frames of the engine (objects in half the scenes, glare, every
floor, light and coat, 640x480 to 1600x1200) as the detector of the model being extended
sees them:

- a mouse: jittered boxes around the mouse, and the detector's own peaks on it;
- not a mouse: the detector's peaks elsewhere (objects, glare, droppings, walls), any
  point of the frame, and part of the mouse (a window on one end of it).

and, with ``real_frames``, from the real frames the model was fine-tuned on, when its
YAML records them (``training: real_labels, real_train_names``; never its held-out
frames): the mouse, jittered, and points of the arena away from it.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from numpy.typing import NDArray
from torch import Tensor, nn

from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.keypoints import (
    VERIFIER_PX,
    VERIFIER_SCALE,
    VERIFIER_VIEWS,
    Detector,
    body_box,
    load_model_spec,
    verifier_crop,
)
from mouse_lifter_ros.core.synth.render import render
from mouse_lifter_ros.training.data2d import draw_mouse, item_rng, rendered_cached, to_grey
from mouse_lifter_ros.training.loader import default_loader_workers, training_device
from mouse_lifter_ros.training.nets import VerifierNet, export_onnx
from mouse_lifter_ros.training.train2d import MEAN, STD, fit_network, photometric

#: Crops per synthetic frame (slots without a crop are labelled -1).
SLOTS = 8
FRAME_SIZES = ((640, 480), (800, 600), (1024, 768), (1280, 960), (1600, 1200))
#: Detector peaks down to this confidence are cut as crops.
PEAK_FLOOR = 0.15
#: Share of the training crops cut as if at the frame's edge: black (what the runtime's
#: crop gives outside the frame) on one side or two (a corner), over EDGE_DEPTH of the
#: crop. Rendered arenas rarely reach the frame's edge; real ones often fill the frame,
#: and the verifier rejected mice at their walls for the black alone.
EDGE_SHARE = 0.15
EDGE_DEPTH = (0.05, 0.45)

_detectors: dict[str, Detector] = {}


def mouse_crop(grey: NDArray[np.uint8], centre: NDArray[Any], size: float,
               rng: np.random.Generator) -> NDArray[np.uint8]:
    """A verifier crop of the mouse at ``centre`` px of ``size`` px, jittered as a
    detector's answer is: the centre by 0.15 sizes, the size by a factor e^N(0, 0.15)."""
    return verifier_crop(grey, centre + rng.normal(0.0, 0.15 * size, 2),
                         size * math.exp(rng.normal(0.0, 0.15)))


def other_crop(grey: NDArray[np.uint8], at: NDArray[Any], size: float,
               rng: np.random.Generator) -> NDArray[np.uint8]:
    """A verifier crop of the scene at ``at`` px (away from the mouse), about a mouse
    ``size`` px wide (a factor e^N(0, 0.3))."""
    return verifier_crop(grey, at, size * math.exp(rng.normal(0.0, 0.3)))


def verifier_item(args: tuple[int, int], *, detector: str
                  ) -> tuple[NDArray[np.uint8], NDArray[np.int8]]:
    """Frame ``i`` of ``seed``: crops (SLOTS, px, px) uint8 and labels (SLOTS,): 1 a
    mouse, 0 not, -1 an empty slot."""
    seed, i = args
    det = _detectors.get(detector)
    if det is None:
        det = _detectors[detector] = Detector(detector, device="cpu", threads=1)
    rng = item_rng(seed, i, 5)
    w, h = FRAME_SIZES[int(rng.integers(len(FRAME_SIZES)))]
    shape, scene, camera, state = draw_mouse(rng, w, h)
    crops = np.zeros((SLOTS, VERIFIER_PX, VERIFIER_PX), np.uint8)
    labels = np.full(SLOTS, -1, np.int8)
    try:
        sample = render(shape, state, camera, scene, rng)
    except InputError:
        return crops, labels
    grey = to_grey(sample.image)
    centre, size = body_box(sample.keypoints_2d)
    seen = bool(sample.in_view[[0, 7]].all() and sample.mask.sum() > 30)
    found: list[tuple[NDArray[np.uint8], int]] = []
    if seen:
        for _ in range(2):
            found.append((mouse_crop(grey, centre, size, rng), 1))
    for c in det.candidates(grey, count=4, floor=PEAK_FLOOR):
        d = float(np.linalg.norm(c.centre - centre))
        if not seen or d > 0.6 * size:
            found.append((verifier_crop(grey, c.centre, c.size), 0))
        elif d < 0.3 * size and 0.6 < c.size / size < 1.6:
            found.append((verifier_crop(grey, c.centre, c.size), 1))
    anywhere = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    if np.linalg.norm(anywhere - centre) > size:
        found.append((other_crop(grey, anywhere, size, rng), 0))
    if seen and rng.random() < 0.3:
        way = rng.normal(0.0, 1.0, 2)  # a window on one end of the mouse
        found.append((verifier_crop(grey, centre + 0.8 * size * way / np.linalg.norm(way),
                              0.6 * size), 0))
    for k, (crop, label) in enumerate(found[:SLOTS]):
        crops[k], labels[k] = crop, label
    return crops, labels


def verifier_crops(count: int, seed: int, *, detector: Path, workers: int,
                   cache: Path | None) -> tuple[NDArray[np.uint8], NDArray[np.int8]]:
    """Crops (N, px, px) and labels (N,) of ``count`` synthetic frames (cached)."""
    data = rendered_cached(partial(verifier_item, detector=str(detector)),
                           f"verifier_crops_s{seed}_n{count}", ("crops", "labels"), count,
                           seed, workers, cache, "render verifier crops")
    crops = data["crops"].reshape(-1, VERIFIER_PX, VERIFIER_PX)
    labels = data["labels"].reshape(-1)
    keep = labels >= 0
    return crops[keep], labels[keep]


#: Crops cut from each real training frame: of the mouse, and of the arena away from it;
#: and how many times the real crops are repeated in the training pool.
REAL_MOUSE_CROPS, REAL_OTHER_CROPS, REAL_REPEAT = 20, 10, 4


def real_crops(model_yaml: Path, seed: int, *, say: Any = print
               ) -> tuple[NDArray[np.uint8], NDArray[np.int8]] | None:
    """Crops (N, px, px) and labels (N,) of the real frames ``model_yaml`` records as its
    training frames (None when it records none or its labels file is not there). The
    mouse's centre and size come from whatever points a frame has labelled (the middle
    of their box, their largest distance apart)."""
    from mouse_lifter_ros.core.labels import read_image, read_labelled, select_frames

    training = (yaml.safe_load(Path(model_yaml).read_text()) or {}).get("training") or {}
    labels, names = training.get("real_labels"), training.get("real_train_names")
    if not labels or not names:
        return None
    if not Path(labels).exists():
        say(f"real training frames: {labels} (from {model_yaml}) is not here; synthetic "
            "crops only")
        return None
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x2EA1]))
    crops, out = [], []
    for s in select_frames(read_labelled(labels), list(names)):
        for i, path in enumerate(s.images):
            pts = s.xy[i][np.isfinite(s.xy[i]).all(axis=1)]
            if len(pts) < 2:
                continue
            grey = to_grey(read_image(path))
            centre = 0.5 * (pts.min(axis=0) + pts.max(axis=0))
            size = float(np.linalg.norm(pts[:, None] - pts[None], axis=2).max())
            for _ in range(REAL_MOUSE_CROPS):
                crops.append(mouse_crop(grey, centre, size, rng))
                out.append(1)
            h, w = grey.shape
            for _ in range(REAL_OTHER_CROPS):
                at = np.array([rng.uniform(0, w), rng.uniform(0, h)])
                if np.linalg.norm(at - centre) > 1.5 * size:
                    crops.append(other_crop(grey, at, size, rng))
                    out.append(0)
    if not crops:
        return None
    say(f"real training frames: {len(crops)} crops from {labels}")
    return np.stack(crops), np.asarray(out, np.int8)


def verifier_batch(crops: NDArray[np.uint8], labels: NDArray[np.int8], n: int,
                   rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """Half mouse crops, half others, each turned, mirrored and recoloured, and some
    cut at the frame's edge (:data:`EDGE_SHARE`)."""
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    idx = np.r_[rng.choice(pos, n // 2), rng.choice(neg, n - n // 2)]
    out = np.empty((n, 1, VERIFIER_PX, VERIFIER_PX), np.float32)
    for j, i in enumerate(idx):
        img = np.rot90(crops[i], int(rng.integers(4)))
        if rng.random() < 0.5:
            img = img[:, ::-1]
        img = photometric(np.ascontiguousarray(img, np.float32), rng)
        if rng.random() < EDGE_SHARE:
            at_edge(img, rng)
        out[j, 0] = (img - MEAN) / STD
    y = labels[idx].astype(np.float32).reshape(n, 1, 1, 1)
    return torch.from_numpy(out), torch.from_numpy(y)


def at_edge(img: NDArray[np.float32], rng: np.random.Generator) -> None:
    """Black out one side of the square crop ``img`` (px, px), or two adjacent ones, over
    a random :data:`EDGE_DEPTH` of its side, in place: the crop of a point near the
    frame's edge or corner."""
    px = img.shape[0]
    first = int(rng.integers(4))
    for side in (first, (first + 1) % 4)[:int(rng.integers(1, 3))]:
        d = max(1, round(rng.uniform(*EDGE_DEPTH) * px))
        band = (np.s_[:d, :], np.s_[:, px - d:], np.s_[px - d:, :], np.s_[:, :d])[side]
        img[band] = 0.0


def verifier_loss(net: nn.Module, batch: tuple[Tensor, ...]) -> Tensor:
    x, y = batch
    loss: Tensor = nn.functional.binary_cross_entropy_with_logits(net(x), y)
    return loss


@dataclass(frozen=True)
class VerifierConfig:
    """``mouse-lifter train-verifier``: the 2D model (its YAML) whose detector is
    extended, where the extended copy goes, and the training's size."""

    model: Path
    out: Path
    frames: int = 8000
    steps: int = 5000
    batch: int = 128
    lr: float = 2e-3
    seed: int = 0
    workers: int = 2
    cache: Path | None = None
    device: str = "auto"
    loader_workers: int = field(default_factory=default_loader_workers)
    amp: bool = False
    real_frames: bool = False
    """Also crops of the real frames the model records as its training frames."""


def held_out_split(labels: NDArray[np.int8], seed: int) -> NDArray[np.bool_]:
    """A tenth of the crops (N,) held out, True where held out."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E1]))
    return rng.random(len(labels)) < 0.1


def train_verifier(cfg: VerifierConfig, *, say: Any = print) -> dict[str, Any]:
    """Render crops, train the verifier, and write a copy of ``cfg.model``'s folder to
    ``cfg.out`` whose detector YAML names ``verifier.onnx``. Returns the log: crops, held-out
    recall of mice and pass rate of the others at the runtime's probability cut."""
    from mouse_lifter_ros.core.keypoints import MOUSE_PROBABILITY

    device = training_device("train-verifier", cfg.device, cfg.loader_workers)
    spec = load_model_spec(cfg.model)
    if spec.detector is None:
        raise InputError(f"model {cfg.model}: no detector to extend")
    crops, labels = verifier_crops(cfg.frames, cfg.seed, detector=spec.detector,
                                   workers=cfg.workers, cache=cfg.cache)
    held = held_out_split(labels, cfg.seed)
    tc, tl = crops[~held], labels[~held]
    real = real_crops(cfg.model, cfg.seed, say=say) if cfg.real_frames else None
    if real is not None:
        tc = np.concatenate([tc, np.repeat(real[0], REAL_REPEAT, axis=0)])
        tl = np.concatenate([tl, np.repeat(real[1], REAL_REPEAT)])
    say(f"{int((labels == 1).sum())} mouse crops, {int((labels == 0).sum())} others; "
        f"{int(held.sum())} held out")
    net = VerifierNet()
    losses = fit_network(net, partial(verifier_batch, tc, tl, cfg.batch), verifier_loss,
                         cfg.steps, cfg.lr, np.random.default_rng(cfg.seed), "verifier",
                         device=device, loader_workers=cfg.loader_workers, amp=cfg.amp)
    with torch.no_grad():
        x = torch.from_numpy(((crops[held].astype(np.float32) - MEAN) / STD)[:, None])
        p = torch.sigmoid(net(x)).numpy().ravel()
    hl = labels[held]
    log = {"crops": len(labels), "mouse_crops": int((labels == 1).sum()),
           "held_out": int(held.sum()), "steps": cfg.steps, "seed": cfg.seed,
           "frames": cfg.frames, "cut": MOUSE_PROBABILITY, "device": device,
           "real_crops": 0 if real is None else len(real[1]),
           "edge_share": EDGE_SHARE,
           "held_out_mouse_recall": float((p[hl == 1] >= MOUSE_PROBABILITY).mean()),
           "held_out_other_pass": float((p[hl == 0] >= MOUSE_PROBABILITY).mean()),
           "final_loss": float(np.mean(losses[-50:]))}
    src = Path(spec.path).parent
    if cfg.out.resolve() != src.resolve():
        shutil.copytree(src, cfg.out, dirs_exist_ok=True)
    export_onnx(net, str(cfg.out / "verifier.onnx"), (1, 1, VERIFIER_PX, VERIFIER_PX),
                output_names=("mouse",), dynamic_batch=True)
    det_yaml = cfg.out / Path(spec.detector).name
    d = yaml.safe_load(det_yaml.read_text())
    d["verifier"] = {"onnx": "verifier.onnx", "px": VERIFIER_PX, "scale": VERIFIER_SCALE,
                     "views": VERIFIER_VIEWS, "training": log}
    det_yaml.write_text(yaml.safe_dump(d, sort_keys=False))
    return log
