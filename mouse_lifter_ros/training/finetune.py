"""Fit the 2D model to a lab's rig and label placement (``mouse-lifter finetune``).

From a trained 2D model (default: the shipped one; only its ONNX files are needed) and a
lab's labelled frames (DeepLabCut's layout, read by :mod:`mouse_lifter_ros.core.labels`),
with a progress bar for each step:

1. read the labels and decide what each body part does (below); hold out some frames,
   spread over the sets, and score the starting model on them;
2. read both networks back from their ONNX files (:func:`~.nets.load_onnx_weights`);
3. render a small synthetic set (or read it from ``cache``);
4. train the detector with the lab's frames mixed into synthetic batches, so that it
   finds the mouse on this rig; then the keypoint network the same way;
5. export both networks and their YAMLs into ``out`` (the starting model is never
   written), score the new model on the held-out frames and print both.

What happens to each labelled body part:

- **mapped to one of our keypoints** (``mapping``, default: the parts named as one of
  ours): the lab's labels supervise that keypoint and its synthetic supervision is
  weighted ``synth_weight_labelled`` (0.1), so the lab's placement wins where it differs
  from ours (as train-2d does with the openfield labels);
- **added** (``add``): a part with no counterpart among ours (say a point between the
  ears) becomes a new output of the network, named as the lab names it. Its heatmap and
  offset filters start as a copy of the keypoint of ours the starting model places
  nearest the lab's labels on the training frames, and only the lab's labels supervise
  it (synthetic frames have no such point; their weight for it is 0). Downstream, the
  lifter ignores names it does not know, and ``eval-2d``, ``analyze`` and the keypoint
  node report it like any other keypoint;
- **anything else** is not used, and is listed with the number of frames labelled.

Our keypoints the lab does not label keep their synthetic supervision at full weight.
Batch norms keep the statistics they had (the export folded them into the
convolutions); their scale and shift are trained.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from numpy.typing import NDArray

from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.core.errors import InputError, ParameterError
from mouse_lifter_ros.core.eval2d import evaluate_2d
from mouse_lifter_ros.core.keypoints import (
    BODY_KEYPOINTS,
    DEFAULT_MODEL,
    MODELS_DIR,
    KeypointModel,
    ModelError,
    ModelSpec,
    body_box,
    load_detector_spec,
    load_model_spec,
)
from mouse_lifter_ros.core.labels import (
    LabelledSet,
    all_bodyparts,
    label_map,
    mapped_xy,
    read_image,
    read_labelled,
    select_frames,
    unused_parts,
)
from mouse_lifter_ros.training.data2d import (
    RealLabels,
    real_labels,
    synth_detector_frames,
    synth_keypoint_windows,
)
from mouse_lifter_ros.training.loader import (
    default_loader_workers,
    device_problems,
    training_device,
)
from mouse_lifter_ros.training.nets import (
    DetectorNet,
    KeypointNet,
    export_onnx,
    load_onnx_weights,
)
from mouse_lifter_ros.training.train2d import (
    CROP_PX,
    det_batch,
    det_loss,
    det_sample,
    fit_network,
    kp_batch,
    kp_loss,
    phase_rng,
    trained_network_problems,
    weights_sha256,
)

#: Fewest frames left to train on after the hold-out.
MIN_TRAIN_FRAMES = 4
#: With fewer labelled frames than this nothing is held out unless asked.
MIN_FOR_HOLDOUT = 10
#: Part of the frames held out by default.
HOLDOUT_FRACTION = 0.2


@dataclass
class FinetuneConfig:
    """What ``mouse-lifter finetune`` does. Steps are batches of ``batch`` samples, of
    which ``real_per_batch`` are the lab's frames."""

    labels: tuple[Path, ...]
    out: Path
    mapping: dict[str, str] | None = None
    """Their body part -> our keypoint; None: the parts named as one of ours."""
    add: tuple[str, ...] = ()
    """Their body parts learnt as new keypoints (no counterpart among ours)."""
    base: Path | None = None
    """The model YAML to start from (None: the shipped model)."""
    holdout: int | None = None
    """Frames held out (None: a fifth of them from 10 frames on, else none)."""
    steps: int = 1000
    det_steps: int = 200
    det_copies: int = 8
    """Turned, cut and negative variants of each lab frame for the detector."""
    batch: int = 32
    real_per_batch: int = 16
    lr: float = 1e-3
    det_lr: float = 5e-4
    synth_weight_labelled: float = 0.1
    windows: int = 2000
    detector_frames: int = 1000
    seed: int = 0
    device: str = "auto"
    """Where the networks train: cpu, cuda, or auto (cuda when PyTorch sees one)."""
    loader_workers: int = field(default_factory=default_loader_workers)
    """Processes building the batches (0: the main process); the result does not
    depend on it."""
    amp: bool = False
    """Mixed precision on cuda (ignored on the CPU)."""
    threads: int = 2
    workers: int = 1
    cache: Path | None = None
    parts: tuple[str, ...] = ("detector", "keypoints")
    frozen: tuple[str, ...] = ("encoder.s4", "encoder.s8")
    """Layers (name prefixes) of both networks left as they are: the first, generic
    ones, whose training costs most (a third of a step) and a few frames teach least."""
    name: str | None = None
    """The new model's name (default: the starting model's + ``-finetuned``)."""
    notes: dict[str, Any] = field(default_factory=dict)


def check_config(cfg: FinetuneConfig) -> None:
    """Every problem of ``cfg`` in one :class:`ParameterError`."""
    problems = []
    for key in ("steps", "det_steps", "windows", "detector_frames"):
        v = getattr(cfg, key)
        if not isinstance(v, int) or v < 0:
            problems.append(f"{key}={v!r}: a whole number >= 0")
    if cfg.steps > 0 and cfg.windows < 1:
        problems.append(f"windows={cfg.windows}: at least 1 synthetic window to train on")
    if cfg.det_steps > 0 and "detector" in cfg.parts and cfg.detector_frames < 1:
        problems.append(f"detector_frames={cfg.detector_frames}: at least 1 to train on")
    if cfg.batch < 2:
        problems.append(f"batch={cfg.batch}: at least 2")
    if not 1 <= cfg.real_per_batch <= cfg.batch:
        problems.append(f"real_per_batch={cfg.real_per_batch}: 1 .. batch ({cfg.batch})")
    for key in ("lr", "det_lr"):
        if not getattr(cfg, key) > 0:
            problems.append(f"{key}={getattr(cfg, key)}: > 0")
    if not 0.0 <= cfg.synth_weight_labelled <= 1.0:
        problems.append(f"synth_weight_labelled={cfg.synth_weight_labelled}: 0 .. 1")
    if cfg.holdout is not None and cfg.holdout < 0:
        problems.append(f"holdout={cfg.holdout}: >= 0")
    bad = sorted(set(cfg.parts) - {"detector", "keypoints"})
    if bad or not cfg.parts:
        problems.append(f"parts={cfg.parts}: detector and/or keypoints")
    problems += device_problems(cfg.device, cfg.loader_workers)
    if cfg.threads < 1 or cfg.workers < 1:
        problems.append(f"threads={cfg.threads}, workers={cfg.workers}: at least 1")
    out = cfg.out.resolve()
    base_dir = (cfg.base or DEFAULT_MODEL).resolve().parent
    if out == base_dir or out.is_relative_to(MODELS_DIR.resolve()):
        problems.append(f"out={cfg.out}: the starting model's folder or the shipped models; "
                        "write the fine-tuned model to a folder of its own")
    if out.exists() and not out.is_dir():
        problems.append(f"out={cfg.out}: exists and is not a folder")
    if problems:
        raise ParameterError("finetune: " + "; ".join(problems))


def check_base(spec: ModelSpec) -> None:
    """The starting model must be one of this project's networks (train-2d's or
    finetune's): its inputs, outputs and first 14 keypoints are read into them."""
    if problems := trained_network_problems(spec):
        raise ModelError(f"finetune: the starting model {spec.path} is not one train-2d or "
                         "finetune wrote: " + "; ".join(problems))


def resolve_parts(bodyparts: Sequence[str], names: Sequence[str],
                  mapping: Mapping[str, str] | None, add: Sequence[str]
                  ) -> tuple[dict[str, str], list[str]]:
    """The lab's body part -> keypoint map and the keypoints of the new model (the
    starting model's ``names``, then the added parts not among them). Every problem
    in one :class:`InputError`."""
    problems = []
    unknown = [a for a in add if a not in bodyparts]
    if unknown:
        problems.append(f"--add {unknown}: not among the labelled body parts "
                        f"{list(bodyparts)}")
    ours = [a for a in add if a in KEYPOINTS]
    if ours:
        problems.append(f"--add {ours}: already our keypoints; they are used as they are")
    both = [a for a in add if mapping and a in mapping]
    if both:
        problems.append(f"{both}: in both --map and --add")
    if problems:
        raise InputError("finetune: " + "; ".join(problems))
    targets = [*names, *(a for a in add if a not in names)]
    base = ({p: p for p in bodyparts if p in names} if mapping is None else dict(mapping))
    full = {**base, **{a: a for a in add}}
    return label_map(bodyparts, targets, full, what="finetune"), targets


def split_frames(keys: Sequence[str], holdout: int | None) -> tuple[list[str], list[str]]:
    """Training and held-out frame keys: ``holdout`` frames (default: a fifth from
    :data:`MIN_FOR_HOLDOUT` frames on) spread evenly over ``keys`` (their order: set by
    set), so that every set gives some."""
    n = len(keys)
    h = (round(HOLDOUT_FRACTION * n) if n >= MIN_FOR_HOLDOUT else 0) if holdout is None \
        else holdout
    if n - h < MIN_TRAIN_FRAMES:
        raise InputError(f"finetune: {n} usable labelled frames, {h} held out: at least "
                         f"{MIN_TRAIN_FRAMES} are needed to train on")
    held = sorted({int((i + 0.5) * n / h) for i in range(h)}) if h else []
    return [k for i, k in enumerate(keys) if i not in set(held)], [keys[i] for i in held]


def _frame_keys(sets: Sequence[LabelledSet]) -> list[str]:
    return [f"{s.name}/{n}" for s in sets for n in s.image_names]


def _usable(sets: Sequence[LabelledSet], mapping: Mapping[str, str],
            targets: Sequence[str]) -> tuple[list[str], list[str]]:
    """Frame keys with at least two of :data:`BODY_KEYPOINTS` labelled (a crop can be
    cut around them), and the others."""
    idx = [list(targets).index(n) for n in BODY_KEYPOINTS if n in targets]
    good: list[str] = []
    bad: list[str] = []
    for s in sets:
        ok = np.isfinite(mapped_xy(s, mapping, targets)[:, idx]).all(axis=2).sum(axis=1) >= 2
        for name, keep in zip(s.image_names, ok.tolist(), strict=True):
            (good if keep else bad).append(f"{s.name}/{name}")
    return good, bad


def nearest_keypoints(model: KeypointModel, sets: Sequence[LabelledSet],
                      parts: Sequence[str]) -> dict[str, tuple[str, float]]:
    """For each of ``parts``: the keypoint of ``model`` placed nearest its labels on the
    frames of ``sets`` (median distance, px) and that distance."""
    dist: dict[str, list[NDArray[np.float64]]] = {p: [] for p in parts}
    for s in sets:
        for i, path in enumerate(s.images):
            xy = model(read_image(path)).xy.astype(np.float64)
            for p in parts:
                lab = s.xy[i, s.bodyparts.index(p)] if p in s.bodyparts else \
                    np.full(2, np.nan)
                if np.isfinite(lab).all() and np.isfinite(xy).all():
                    dist[p].append(np.linalg.norm(xy - lab, axis=1))
    out = {}
    for p in parts:
        if not dist[p]:
            raise InputError(f"finetune: --add {p}: the starting model finds the mouse in "
                             f"none of the frames where {p} is labelled")
        med = np.median(np.stack(dist[p]), axis=0)
        k = int(np.argmin(med))
        out[p] = (model.names[k], float(med[k]))
    return out


def _turned(image: NDArray[np.uint8], kp: NDArray[np.float32], quarter_turns: int,
            mirror: bool) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
    """``image`` (H, W) and its keypoints (K, 2) px turned clockwise by ``quarter_turns``
    times 90 degrees, then mirrored left-right."""
    for _ in range(quarter_turns % 4):
        h = image.shape[0]
        image = cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)  # (x, y) -> (h - 1 - y, x)
        kp = np.stack([h - 1 - kp[:, 1], kp[:, 0]], axis=1)
    if mirror:
        w = image.shape[1]
        image = image[:, ::-1]
        kp = np.stack([w - 1 - kp[:, 0], kp[:, 1]], axis=1)
    return np.ascontiguousarray(image), kp.astype(np.float32)


def lab_detector_samples(real: RealLabels, copies: int, rng: np.random.Generator, *,
                         negative: float = 0.25
                         ) -> list[tuple[NDArray[np.uint8], NDArray[np.float32]]]:
    """``copies`` detector samples (letterboxed canvas, target) of each lab frame: turned
    by a multiple of 90 degrees and mirrored at random (seen from above the arena has no
    up), cut to a random window of 60-100 % of the frame that holds the mouse, so that
    no place in the frame becomes the mouse's; or, for a ``negative`` part of them, to a
    window that misses it, labelled "no mouse": the lab's own floor, walls, corners
    and reflections as the negatives that synthetic frames cannot give."""
    out = []
    for img, kp in zip(real.images, real.keypoints, strict=True):
        for _ in range(copies):
            im, pts = _turned(img, kp, int(rng.integers(4)), bool(rng.random() < 0.5))
            h, w = im.shape
            centre, size = body_box(pts)
            lo = np.maximum(centre - 0.8 * size, 0)  # the mouse, with a margin
            hi = np.minimum(centre + 0.8 * size, [w - 1, h - 1])
            if rng.random() >= negative:
                cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
                # the window's corner where the window still holds the whole mouse
                x0 = int(rng.uniform(max(0, hi[0] + 1 - cw), max(0, min(w - cw, lo[0]))))
                y0 = int(rng.uniform(max(0, hi[1] + 1 - ch), max(0, min(h - ch, lo[1]))))
                out.append(det_sample(im[y0:y0 + ch, x0:x0 + cw],
                                      pts - np.array([x0, y0], np.float32)))
                continue
            for _ in range(20):
                cw, ch = int(w * rng.uniform(0.4, 0.7)), int(h * rng.uniform(0.4, 0.7))
                x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
                if (x0 + cw < centre[0] - 1.5 * size or centre[0] + 1.5 * size < x0
                        or y0 + ch < centre[1] - 1.5 * size or centre[1] + 1.5 * size < y0):
                    out.append(det_sample(im[y0:y0 + ch, x0:x0 + cw], None))
                    break
    return out


def _yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else {}


def write_finetuned_yaml(out: Path, base: ModelSpec, *, name: str, keypoints: Sequence[str],
                         notes: Mapping[str, Any]) -> Path:
    """``out/default.yaml`` and ``out/detector.yaml``: the starting model's descriptions
    with this model's name, files, keypoints and training notes."""
    assert base.detector is not None
    det = _yaml(base.detector) | {"name": f"{name}-detector", "onnx": "detector.onnx"}
    spec = load_detector_spec(base.detector)
    if spec.verifier is not None:  # the crop check goes along, unchanged
        shutil.copyfile(spec.verifier, out / "verifier.onnx")
        det["verifier"] = {**det["verifier"], "onnx": "verifier.onnx"}
    if spec.second_detector is not None:  # and the second detector network, unchanged
        shutil.copyfile(spec.second_detector, out / "detector_objects.onnx")
        det["second_detector"] = {**det["second_detector"], "onnx": "detector_objects.onnx"}
    (out / "detector.yaml").write_text(yaml.safe_dump(det, sort_keys=False))
    kp = _yaml(base.path)
    kp.update(name=name, onnx="keypoints.onnx", keypoints=list(keypoints))
    kp["crop"] = {**(kp.get("crop") or {}), "detector": "detector.yaml"}
    kp["training"] = dict(notes)
    path = out / "default.yaml"
    path.write_text(f"# Fine-tuned by mouse-lifter finetune from {base.path} (see "
                    "training below).\n" + yaml.safe_dump(kp, sort_keys=False, width=100))
    return path


def before_after_table(before: Mapping[str, Any], after: Mapping[str, Any],
                       starts: Mapping[str, str]) -> str:
    """The held-out figures of the starting and the fine-tuned model side by side;
    ``starts``: added part -> the starting keypoint its 'before' figure is of."""
    rows = [["part", "before: keypoint", "mean px", "median px", "PCK@5",
             "after: mean px", "median px", "PCK@5"]]
    items = list(after["keypoints"])
    for part in [*items, "all"]:
        b = before["mean"] if part == "all" else before["keypoints"].get(part)
        a = after["mean"] if part == "all" else after["keypoints"][part]
        kp = "" if part == "all" or b is None else b["model_keypoint"]
        if part in starts:
            kp = f"{kp} (start)"

        def cells(s: Mapping[str, Any] | None) -> list[str]:
            if s is None:
                return ["-", "-", "-"]
            return [f"{s['mean_px']:.2f}" if s["mean_px"] is not None else "-",
                    f"{s['median_px']:.2f}" if s["median_px"] is not None else "-",
                    f"{s['pck@5px']:.1f}" if s["pck@5px"] is not None else "-"]
        rows.append([part, kp, *cells(b), *cells(a)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in rows]
    det = [f"{what}: {d['frames']} frames, {d['found']} found, {d['wrong_detection']} wrong "
           f"detection, {d['missed']} missed" for what, d in (("before", before),
                                                               ("after", after))]
    return "\n".join([*det, *lines])


def finetune(cfg: FinetuneConfig, *, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every step (module notes); returns the log also written to
    ``out/finetune_log.json``. ``say`` prints the report lines."""
    t0 = time.perf_counter()
    check_config(cfg)
    device = training_device("finetune", cfg.device, cfg.loader_workers)
    base = load_model_spec(cfg.base)
    check_base(base)
    assert base.detector is not None
    det_spec = load_detector_spec(base.detector)
    torch.set_num_threads(cfg.threads)
    sets = read_labelled(cfg.labels)
    parts = all_bodyparts(sets)
    mapping, targets = resolve_parts(parts, base.keypoints, cfg.mapping, cfg.add)
    unused = unused_parts(sets, list(mapping))
    say(f"labels: {len(sets)} set(s), {sum(len(s.images) for s in sets)} frames; body parts "
        + ", ".join(f"{p} -> {t}{' (new keypoint)' if t not in base.keypoints else ''}"
                    for p, t in mapping.items()))
    if unused:
        say("not used (neither mapped to one of our keypoints nor added): "
            + ", ".join(f"{p} ({n} frames labelled)" for p, n in unused.items()))
    usable, unusable = _usable(sets, mapping, targets)
    if unusable:
        say(f"left out, fewer than two of {', '.join(BODY_KEYPOINTS)} labelled (the crop "
            f"is cut around them): {', '.join(unusable)}")
    train_keys, held_keys = split_frames(usable, cfg.holdout)
    train_sets = select_frames(sets, train_keys)
    held_sets = select_frames(sets, held_keys)
    say(f"training on {len(train_keys)} frames, holding out {len(held_keys)}")
    start = KeypointModel(base, device="cpu", threads=cfg.threads)
    added = [t for t in targets if t not in base.keypoints]
    starts = nearest_keypoints(start, train_sets, added) if added else {}
    for a, (k, d) in starts.items():
        say(f"new keypoint {a}: starts as a copy of {k} (median {d:.1f} px from its labels "
            "on the training frames)")
    before = None
    if held_sets:
        # an added part is scored at the keypoint it starts from, unless that one is
        # also a lab's part
        before_map = {p: starts[t][0] if t in starts else t for p, t in mapping.items()
                      if t not in starts or starts[t][0] not in mapping.values()}
        before = evaluate_2d(start, held_sets, before_map)["overall"]
    t_prep = time.perf_counter()

    # ---- networks from the starting model's ONNX files
    kp_net = KeypointNet(len(targets))
    load_onnx_weights(kp_net, str(base.onnx),
                      extra_keypoints=len(targets) - len(base.keypoints))
    with torch.no_grad():
        for a in added:
            t, s = targets.index(a), targets.index(starts[a][0])
            for conv, rows in ((kp_net.heatmap, 1), (kp_net.offset, 2)):
                for param in (conv.weight, conv.bias):
                    assert param is not None
                    param[rows * t:rows * t + rows] = param[rows * s:rows * s + rows]
    det_net = DetectorNet()
    load_onnx_weights(det_net, str(det_spec.onnx))
    for net in (kp_net, det_net):
        for pname, param in net.named_parameters():
            param.requires_grad = not pname.startswith(tuple(cfg.frozen))

    # ---- data
    real = real_labels(train_sets, mapping, targets)
    train_det = "detector" in cfg.parts and cfg.det_steps > 0
    train_kp = "keypoints" in cfg.parts and cfg.steps > 0
    # the keypoint network's synthetic supervision is seen from the starting model's
    # side (a bottom-view network keeps learning renders from below); the detector's
    # stays the top view's, the one every shipped model's detector learnt (the
    # bottom-view card says why)
    windows = synth_keypoint_windows(cfg.windows, cfg.seed, view=base.view,
                                     workers=cfg.workers, cache=cfg.cache) if train_kp else {}
    frames = synth_detector_frames(cfg.detector_frames, cfg.seed, workers=cfg.workers,
                                   cache=cfg.cache) if train_det else {}
    t_data = time.perf_counter()

    # ---- training
    bs, nr = cfg.batch, cfg.real_per_batch
    log: dict[str, Any] = {}
    if train_det:
        rd = lab_detector_samples(real, cfg.det_copies, phase_rng(cfg.seed, 9))
        log["detector_loss"] = fit_network(
            det_net, lambda r: det_batch(frames, rd, bs - nr, nr, r), det_loss,
            cfg.det_steps, cfg.det_lr, phase_rng(cfg.seed, 10), "detector (lab frames)",
            device=device, loader_workers=cfg.loader_workers, amp=cfg.amp,
            frozen_bn=True)[-50:]
    t_det = time.perf_counter()
    if train_kp:
        labelled = np.isfinite(real.keypoints).all(axis=2).any(axis=0)
        sw = np.where(labelled, cfg.synth_weight_labelled, 1.0).astype(np.float32)
        sw[len(KEYPOINTS):] = 0.0  # synthetic frames have no position for added parts
        flip = dataclasses.replace(base, keypoints=tuple(targets)).flip_index
        log["keypoints_loss"] = fit_network(
            kp_net, lambda r: kp_batch(windows, real, bs - nr, nr, r, sw, flip=flip),
            kp_loss, cfg.steps, cfg.lr, phase_rng(cfg.seed, 11), "keypoints (lab frames)",
            device=device, loader_workers=cfg.loader_workers, amp=cfg.amp,
            frozen_bn=True)[-50:]
    t_kp = time.perf_counter()

    # ---- export
    cfg.out.mkdir(parents=True, exist_ok=True)
    export_onnx(kp_net, str(cfg.out / "keypoints.onnx"), (1, 1, CROP_PX, CROP_PX),
                output_names=("heatmaps", "offsets"))
    if train_det:
        export_onnx(det_net, str(cfg.out / "detector.onnx"),
                    (1, 1, det_spec.input.height, det_spec.input.width),
                    output_names=("centre", "box"))
    else:
        shutil.copyfile(det_spec.onnx, cfg.out / "detector.onnx")
    name = cfg.name or f"{base.name}-finetuned"
    notes: dict[str, Any] = {
        "finetuned_from": str(base.path),
        "finetuned_from_sha256": {"keypoints": weights_sha256(base.onnx),
                                  "detector": weights_sha256(det_spec.onnx)},
        "real_labels": [str(s.path) for s in sets],
        "label_map": dict(mapping),
        "added": {a: {"init_from": s, "start_median_px": round(d, 2)}
                  for a, (s, d) in starts.items()},
        "not_used": unused,
        "steps": cfg.steps if train_kp else 0, "detector_steps": cfg.det_steps if train_det
        else 0, "batch": bs, "real_per_batch": nr, "lr": cfg.lr, "det_lr": cfg.det_lr,
        "synthetic_windows": cfg.windows, "synthetic_detector_frames": cfg.detector_frames,
        "seed": cfg.seed, "device": device, "frozen": list(cfg.frozen),
        "real_frames": len(train_keys), "real_train_names": train_keys,
        "holdout": held_keys, **cfg.notes}
    path = write_finetuned_yaml(cfg.out, base, name=name, keypoints=targets, notes=notes)
    t_export = time.perf_counter()

    # ---- report
    after = None
    if held_sets:
        model = KeypointModel(path, device="cpu", threads=cfg.threads)
        after = evaluate_2d(model, held_sets, mapping)["overall"]
        assert before is not None
        say(f"held-out frames ({len(held_keys)}), starting model -> fine-tuned model:")
        say(before_after_table(before, after, {a: s for a, (s, _) in starts.items()}))
    else:
        say("no frames held out: no before/after figures (--holdout N)")
    seconds = time.perf_counter() - t0
    log |= {"model": str(path), "seconds": round(seconds, 1),
            "phase_seconds": {"labels_and_before": round(t_prep - t0, 1),
                              "synthetic_data": round(t_data - t_prep, 1),
                              "detector": round(t_det - t_data, 1),
                              "keypoints": round(t_kp - t_det, 1),
                              "export": round(t_export - t_kp, 1),
                              "after": round(time.perf_counter() - t_export, 1)},
            "before": before, "after": after, "training": notes}
    (cfg.out / "finetune_log.json").write_text(json.dumps(log, indent=1))
    say(f"wrote {path} in {seconds:.0f} s")
    return log
