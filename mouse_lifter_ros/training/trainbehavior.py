"""Training and evaluation of the behaviour classifier on synthetic sequences (numpy only).

:func:`train_behavior` fits the 3D and the 2D-only networks of a
:class:`~mouse_lifter_ros.core.behavior.BehaviorModel` (small MLPs, Adam, class-balanced
cross-entropy) on the features of synthetic pose streams (:mod:`.databehavior`) and
writes the model file; :func:`evaluate_behavior` scores a model file on held-out
sequences. Scores are per frame, of the smoothed on-line output
(:func:`~mouse_lifter_ros.core.behavior.smooth_stream`, the same numbers as
:meth:`~mouse_lifter_ros.core.behavior.BehaviorClassifier.update`).

Seeds: every sequence is ``SeedSequence([seed, key])``; the keys below keep training,
held-out and lifted sequences apart whatever the seed.
"""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.behavior import (
    CLASS_NAMES,
    BehaviorModel,
    FloatArray,
    Network,
    Stream,
    smooth_stream,
    softmax,
)
from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.training.databehavior import (
    LIFTED_FPS,
    SEQUENCE_S,
    TRAIN_FPS,
    Clip,
    make_clips,
)

#: Second entry of the evaluation seed sequences: ``SeedSequence([seed, EVAL_OFFSET + i])``.
EVAL_OFFSET: Final = 1_000_000
#: Second entry of the seed sequence of the network initialisation and batches.
INIT_KEY: Final = 2_000_000
#: Second entry of the seed sequences of the lifted sequences: ``SeedSequence([seed,
#: LIFTED_KEY + i])`` for training, ``LIFTED_KEY + EVAL_OFFSET + i`` held out.
LIFTED_KEY: Final = 3_000_000


@dataclass(frozen=True)
class TrainConfig:
    """MLP training settings (Adam, class-balanced cross-entropy, L2 weight decay)."""

    hidden: tuple[int, ...] = (64, 64)
    epochs: int = 40
    batch: int = 512
    lr: float = 3e-3
    weight_decay: float = 1e-4


def _train_network(x: FloatArray, y: NDArray[np.intp], n_classes: int,
                   rng: np.random.Generator, config: TrainConfig) -> Network:
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    net0 = Network(mean, std, (), ())
    z = net0.standardise(x)
    sizes = [x.shape[1], *config.hidden, n_classes]
    ws = [rng.normal(0.0, math.sqrt(2.0 / a), (a, b)) for a, b in itertools.pairwise(sizes)]
    bs = [np.zeros(b) for b in sizes[1:]]
    params = [*ws, *bs]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    cw = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1.0)), 0.0)
    sample_w = cw[y]
    b1, b2, eps = 0.9, 0.999, 1e-8
    n = len(y)
    steps_per_epoch = max(1, math.ceil(n / config.batch))
    total = config.epochs * steps_per_epoch
    t = 0
    layers = len(ws)
    for _ in range(config.epochs):
        order = rng.permutation(n)
        for s in range(steps_per_epoch):
            rows = order[s * config.batch:(s + 1) * config.batch]
            xb, yb, wb = z[rows], y[rows], sample_w[rows]
            acts = [xb]
            h = xb
            for i in range(layers):
                h = h @ ws[i] + bs[i]
                if i < layers - 1:
                    h = np.maximum(h, 0.0)
                acts.append(h)
            p = softmax(h)
            g = p.copy()
            g[np.arange(len(yb)), yb] -= 1.0
            g *= (wb / wb.sum())[:, None]
            gw: list[FloatArray] = [np.zeros(0)] * layers
            gb: list[FloatArray] = [np.zeros(0)] * layers
            for i in range(layers - 1, -1, -1):
                gw[i] = acts[i].T @ g + config.weight_decay * ws[i]
                gb[i] = g.sum(axis=0)
                if i > 0:
                    g = (g @ ws[i].T) * (acts[i] > 0.0)
            t += 1
            lr = config.lr * 0.5 * (1.0 + math.cos(math.pi * t / total))  # cosine decay
            for k, grad in enumerate([*gw, *gb]):
                m1[k] = b1 * m1[k] + (1.0 - b1) * grad
                m2[k] = b2 * m2[k] + (1.0 - b2) * grad * grad
                step = lr * (m1[k] / (1.0 - b1 ** t)) / (np.sqrt(m2[k] / (1.0 - b2 ** t)) + eps)
                params[k] -= step
            ws, bs = params[:layers], params[layers:]
    return Network(mean, std, tuple(w.copy() for w in ws), tuple(b.copy() for b in bs))


def _f1(truth: NDArray[np.intp], pred: NDArray[np.intp], names: abc.Sequence[str]) -> dict[
        str, Any]:
    per = {}
    for c, name in enumerate(names):
        tp = float(np.sum((pred == c) & (truth == c)))
        fp = float(np.sum((pred == c) & (truth != c)))
        fn = float(np.sum((pred != c) & (truth == c)))
        per[name] = 2.0 * tp / (2.0 * tp + fp + fn) if tp + fp + fn > 0 else 1.0
    return {"f1": {k: round(v, 4) for k, v in per.items()},
            "macro_f1": round(float(np.mean(list(per.values()))), 4),
            "accuracy": round(float(np.mean(pred == truth)), 4) if len(truth) else 0.0}


def _score(model: BehaviorModel, data: abc.Sequence[tuple[Clip, Stream]]) -> dict[str, Any]:
    """Per-class and macro F1 of the smoothed on-line output over every delivered frame."""
    names = model.class_names
    out: dict[str, Any] = {}
    minutes = sum(float(c.stamps[-1] - c.stamps[0]) for c, _ in data) / 60.0

    def switches(labels: abc.Iterable[NDArray[np.intp]]) -> float:
        count = sum(int(np.sum(x[1:] != x[:-1])) for x in labels)
        return round(count / max(minutes, 1e-9), 1)

    for dims in (3, 2):
        truth, pred = [], []
        for clip, stream in data:
            raw = model.networks[dims].probabilities(stream.features[dims])
            probs, known = smooth_stream(stream, raw, model.smooth_tau_s)
            p = np.where(known, probs.argmax(axis=1), -1)  # -1: "unknown"
            truth.append(clip.labels)
            pred.append(p)
        out[f"{dims}d"] = _f1(np.concatenate(truth), np.concatenate(pred), names)
        out[f"{dims}d"]["switches_per_min"] = switches(pred)
    out["true_switches_per_min"] = switches(c.labels for c, _ in data)
    frames = sum(len(c.stamps) for c, _ in data)
    counts = np.bincount(np.concatenate([c.labels for c, _ in data]), minlength=len(names))
    out["frames"] = int(frames)
    out["class_frames"] = {n: int(k) for n, k in zip(names, counts, strict=True)}
    out["sequences"] = len(data)
    return out


def train_behavior(out_path: str | Path, *, sequences: int = 300, seed: int = 0,
                   seconds: float = SEQUENCE_S, eval_sequences: int = 100,
                   config: TrainConfig = TrainConfig(), workers: int = 1,
                   lifted_sequences: int = 0, eval_lifted: int = 0,
                   cache: str | Path | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """Train the 3D and 2D-only networks on synthetic sequences; write the model file.

    Training data (:func:`~.databehavior.synthetic_clip`): sequence ``i`` (0 <= i <
    ``sequences``) is generated from ``SeedSequence([seed, i])`` (spawned into a motion
    and a noise stream): a random :func:`~mouse_lifter_ros.core.synth.body.sample_shape`
    mouse, :func:`~mouse_lifter_ros.core.synth.motion.generate_sequence` of ``seconds``
    at 25, 30 or 60 fps (odds :data:`~.databehavior.TRAIN_FPS`), the fine labels mapped
    to the classes by :data:`~mouse_lifter_ros.core.body.BEHAVIOR_CLASSES`. The
    keypoints are corrupted like a lifter's (:func:`~.databehavior.corrupt`): white
    noise of 1-4 mm per axis plus per-keypoint offsets of 0-3 mm drifting with a 0.3 s
    correlation time (both drawn per sequence), occlusion runs (mean 6 frames; 0-~11 %
    of keypoints flagged invalid, their positions NaN or ~1 cm off), and 0-10 % of the
    frames dropped. The MLPs are
    trained on the features of every used frame with ``config``; the random
    initialisation and batches come from ``SeedSequence([seed, INIT_KEY])``. Then the
    model is scored on ``eval_sequences`` held-out sequences (:func:`evaluate_behavior`
    with the same ``seed``; 0 skips it). ``workers`` processes make the sequences
    (the results do not depend on it).

    ``lifted_sequences`` more training sequences (``SeedSequence([seed, LIFTED_KEY +
    i])``) are rendered and lifted by the whole image-to-pose core
    (:func:`~.databehavior.lifted_clip`), so that the networks also learn the lifter's
    own errors; ``eval_lifted`` held-out lifted sequences are scored too. ``cache``: a
    folder keeping the lifted poses between runs (rendering and lifting are slow: the
    model card says how slow).

    Returns the metrics, also stored in the file's ``meta``: ``{"train": scores on the
    training sequences, "heldout": :func:`evaluate_behavior`'s result, "seconds":
    {"make_data", "fit", "total", "workers"}}``.
    """
    _check_counts(sequences, eval_sequences, seconds, lifted_sequences)
    start = time.monotonic()
    data = make_clips(seed, range(sequences), seconds, progress, "training data", workers)
    if lifted_sequences:
        data += make_clips(seed, [LIFTED_KEY + i for i in range(lifted_sequences)], seconds,
                           progress, "lifted training data", workers, lifted=True,
                           cache=cache)
    gen_s = time.monotonic() - start
    y = np.concatenate([c.labels[s.used] for c, s in data])
    rng = np.random.default_rng(np.random.SeedSequence([seed, INIT_KEY]))
    networks = {}
    for dims in (3, 2):
        x = np.concatenate([s.features[dims] for _, s in data])
        networks[dims] = _train_network(x, y, len(CLASS_NAMES), rng, config)
        if progress:
            print(f"[behavior] trained the {dims}D network on {len(y)} frames "
                  f"({time.monotonic() - start:.0f} s)", file=sys.stderr, flush=True)
    meta = _training_record(seed, sequences, seconds, lifted_sequences, config)
    fit_s = time.monotonic() - start - gen_s
    model = BehaviorModel(class_names=CLASS_NAMES, networks=networks, meta=meta)
    metrics: dict[str, Any] = {"train": _score(model, data)}
    if eval_sequences:
        eval_start = time.monotonic()
        metrics["heldout"] = _evaluate(model, seed, eval_sequences, seconds, progress,
                                       workers, eval_lifted, cache)
        metrics["heldout"]["seconds"] = round(time.monotonic() - eval_start, 1)
    metrics["seconds"] = {"make_data": round(gen_s, 1), "fit": round(fit_s, 1),
                          "total": round(time.monotonic() - start, 1), "workers": workers}
    meta["metrics"] = metrics
    BehaviorModel(class_names=CLASS_NAMES, networks=networks, meta=meta).save(out_path)
    return metrics


def _check_counts(sequences: int, eval_sequences: int, seconds: float,
                  lifted_sequences: int) -> None:
    """:class:`ParameterError` for counts outside the seed scheme or bad ``seconds``."""
    if not 1 <= sequences <= EVAL_OFFSET:
        raise ParameterError(f"sequences {sequences} must be in 1..{EVAL_OFFSET}")
    if not 0 <= eval_sequences <= INIT_KEY - EVAL_OFFSET:
        raise ParameterError(f"eval_sequences {eval_sequences} must be in "
                             f"0..{INIT_KEY - EVAL_OFFSET}")
    if not (math.isfinite(seconds) and seconds > 0.0):
        raise ParameterError(f"seconds {seconds} must be a positive number")
    if not 0 <= lifted_sequences <= EVAL_OFFSET:
        raise ParameterError(f"lifted_sequences {lifted_sequences} must be in 0..{EVAL_OFFSET}")


def _training_record(seed: int, sequences: int, seconds: float, lifted_sequences: int,
                     config: TrainConfig) -> dict[str, Any]:
    """The model file's ``meta``: how it was trained (JSON-able; metrics added later)."""
    return {
        "seed": seed, "sequences": sequences, "seconds_per_sequence": seconds,
        "fps": [list(f) for f in TRAIN_FPS], "lifted_sequences": lifted_sequences,
        "lifted_fps": LIFTED_FPS,
        "corruption": "white noise 1-4 mm per axis + per-keypoint AR(1) offsets 0-3 mm "
                      "(0.3 s); occlusion runs (mean 6 frames, 0-2 % start per frame and "
                      "keypoint; NaN or ~1 cm off); 0-10 % of frames dropped",
        "config": {
            "hidden": list(config.hidden), "epochs": config.epochs, "batch": config.batch,
            "lr": config.lr, "weight_decay": config.weight_decay},
        "seed_scheme": "train: SeedSequence([seed, i]), i < sequences; held-out: "
                       f"SeedSequence([seed, {EVAL_OFFSET} + i]); network init and batches: "
                       f"SeedSequence([seed, {INIT_KEY}])",
    }


def _evaluate(model: BehaviorModel, seed: int, sequences: int, seconds: float,
              progress: bool, workers: int, lifted: int = 0,
              cache: str | Path | None = None) -> dict[str, Any]:
    data = make_clips(seed, [EVAL_OFFSET + i for i in range(sequences)], seconds, progress,
                      "held-out data", workers)
    out = _score(model, data)
    out["seed"] = seed
    if lifted:
        data = make_clips(seed, [LIFTED_KEY + EVAL_OFFSET + i for i in range(lifted)],
                          seconds, progress, "held-out lifted data", workers, lifted=True,
                          cache=cache)
        out["lifted"] = _score(model, data)
    return out


def evaluate_behavior(model_path: str | Path | None = None, *, seed: int = 0,
                      sequences: int = 100, seconds: float = SEQUENCE_S, workers: int = 1,
                      lifted: int = 0, cache: str | Path | None = None,
                      progress: bool = False) -> dict[str, Any]:
    """Per-class and macro F1 of the 3D and the 2D-only networks on held-out sequences.

    Sequence ``i`` is made from ``SeedSequence([seed, EVAL_OFFSET + i])`` exactly as the
    training sequences are (:func:`train_behavior`), so it is never one of the
    training sequences (``SeedSequence([seed, i])``, ``i < EVAL_OFFSET``), whatever the
    seeds. Scores are per frame over every delivered frame, of the smoothed on-line
    output (what :class:`~mouse_lifter_ros.core.behavior.BehaviorClassifier` returns; a
    frame labelled ``"unknown"`` counts as wrong). ``workers`` processes make the
    sequences (same results).

    ``lifted`` > 0 also scores that many held-out sequences rendered and run through
    the whole image-to-pose core (:func:`~.databehavior.lifted_clip`,
    ``SeedSequence([seed, LIFTED_KEY + EVAL_OFFSET + i])``): the classifier fed what the
    lifter really gives, under ``"lifted"`` (same keys). ``cache`` keeps those poses between runs.

    Returns ``{"3d": {"f1": {class: F1}, "macro_f1", "accuracy", "switches_per_min"},
    "2d": {...}, "true_switches_per_min", "frames", "class_frames", "sequences",
    "seed"}``.

    Raises
    ------
    InputError
        The model file cannot be read
        (:meth:`~mouse_lifter_ros.core.behavior.BehaviorModel.load`).
    """
    if not 1 <= sequences <= INIT_KEY - EVAL_OFFSET:
        raise ParameterError(f"sequences {sequences} must be in 1..{INIT_KEY - EVAL_OFFSET}")
    if not 0 <= lifted <= INIT_KEY - EVAL_OFFSET:
        raise ParameterError(f"lifted {lifted} must be in 0..{INIT_KEY - EVAL_OFFSET}")
    return _evaluate(BehaviorModel.load(model_path), seed, sequences, seconds, progress,
                     workers, lifted, cache)
