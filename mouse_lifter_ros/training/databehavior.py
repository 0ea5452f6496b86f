"""Synthetic pose streams for the behaviour classifier: corrupted and lifted sequences.

Each sequence is a :class:`Clip` (what the classifier is fed: (T,) stamps in seconds,
(T, 14, 3) arena-frame keypoints in metres, (T, 14) valid flags, and the truth: (T,)
class indices into :data:`~mouse_lifter_ros.core.behavior.CLASS_NAMES`) with its
:class:`~mouse_lifter_ros.core.behavior.Stream` (the classifier's features of every
frame). :func:`synthetic_clip` corrupts the synthetic engine's true keypoints like a
lifter would; :func:`lifted_clip` renders the sequence and runs it through the whole
image-to-pose core. :func:`make_clips` makes many, in processes. The seeds they are
made from are the training's (:mod:`.trainbehavior`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import sys
import time
from collections import abc
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.behavior import (
    CLASS_NAMES,
    DEFAULT_MODEL,
    BoolArray,
    FloatArray,
    Stream,
    prepare_stream,
)
from mouse_lifter_ros.core.body import BEHAVIOR_CLASSES, KEYPOINTS
from mouse_lifter_ros.core.synth.body import sample_shape
from mouse_lifter_ros.core.synth.motion import Sequence, generate_sequence

#: Frames per second of the synthetic training and evaluation sequences and their odds.
TRAIN_FPS: Final[tuple[tuple[float, float], ...]] = ((25.0, 0.2), (30.0, 0.6), (60.0, 0.2))
#: Seconds per synthetic sequence.
SEQUENCE_S: Final = 15.0
#: Frame rate of the lifted sequences (rendering is the expensive part).
LIFTED_FPS: Final = 30.0

_N_KP = len(KEYPOINTS)


@dataclass(frozen=True)
class Clip:
    """One corrupted synthetic sequence: what the classifier is fed, and the truth."""

    stamps: FloatArray  # (T,) of the delivered frames
    keypoints: FloatArray  # (T, 14, 3)
    valid: BoolArray  # (T, 14)
    labels: NDArray[np.intp]  # (T,) class index
    noise_mm: float
    drop_rate: float
    invalid_rate: float


def corrupt(rng: np.random.Generator, seq: Sequence, truth: FloatArray,
            classes: abc.Sequence[str]) -> Clip:
    """Lifter-like noise, occlusions and frame drops of ``seq``'s (T, 14, 3) ``truth``.

    See :func:`~.trainbehavior.train_behavior` for the amounts; ``classes`` give the
    labels' indices.
    """
    n = len(truth)
    fps = seq.fps
    sigma = float(rng.uniform(0.001, 0.004))
    drift = float(rng.uniform(0.0, 0.003))
    rho = math.exp(-1.0 / (0.3 * fps))  # AR(1) offsets with a 0.3 s correlation time
    shocks = rng.normal(0.0, drift * math.sqrt(1.0 - rho * rho), (n, _N_KP, 3))
    offset = np.zeros((n, _N_KP, 3))
    offset[0] = rng.normal(0.0, drift, (_N_KP, 3))
    for i in range(1, n):
        offset[i] = rho * offset[i - 1] + shocks[i]
    kp = truth + offset + rng.normal(0.0, sigma, truth.shape)
    # Occlusions: runs (mean 6 frames) of invalid keypoints, positions NaN or off by ~1 cm.
    start_p = float(rng.uniform(0.0, 0.02))
    valid = np.ones((n, _N_KP), dtype=bool)
    starts = np.argwhere(rng.random((n, _N_KP)) < start_p)
    lengths = rng.geometric(1.0 / 6.0, len(starts))
    for (i, j), m in zip(starts, lengths, strict=True):
        valid[i:i + m, j] = False
    bad = ~valid
    garbage = kp + rng.normal(0.0, 0.01, kp.shape)
    kp = np.where(bad[..., None], garbage, kp)
    kp[bad & (rng.random((n, _N_KP)) < 0.5)] = np.nan
    # Frame drops.
    drop_rate = float(rng.uniform(0.0, 0.1))
    keep = rng.random(n) >= drop_rate
    keep[0] = True
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[BEHAVIOR_CLASSES[x]] for x in seq.labels], dtype=np.intp)
    return Clip(stamps=seq.times[keep], keypoints=kp[keep], valid=valid[keep],
                labels=labels[keep], noise_mm=1000.0 * sigma, drop_rate=drop_rate,
                invalid_rate=float(bad.mean()))


def synthetic_clip(seed: int, index: int, seconds: float) -> tuple[Clip, Stream]:
    """Sequence ``SeedSequence([seed, index])``: generated, corrupted and prepared.

    Its mouse, frame rate (odds :data:`TRAIN_FPS`) and ``seconds`` of behaviour bouts
    come from the synthetic engine; :func:`corrupt` adds the lifter-like errors.
    """
    motion_ss, noise_ss = np.random.SeedSequence([seed, index]).spawn(2)
    rng = np.random.default_rng(motion_ss)
    fps_choices, odds = zip(*TRAIN_FPS, strict=True)
    fps = float(fps_choices[int(rng.choice(len(fps_choices), p=odds))])
    shape = sample_shape(rng)
    seq = generate_sequence(rng, shape, seconds=seconds, fps=fps)
    truth = np.array([s.keypoints for s in seq.states(shape)])
    clip = corrupt(np.random.default_rng(noise_ss), seq, truth, CLASS_NAMES)
    return clip, prepare_stream(clip.stamps, clip.keypoints, clip.valid)



def lifted_clip(seed: int, index: int, seconds: float,
                cache: str | Path | None = None) -> tuple[Clip, Stream]:
    """Sequence ``SeedSequence([seed, index])`` rendered and lifted as the nodes lift it.

    :func:`~mouse_lifter_ros.core.synth.dataset.render_item` draws a top-view sequence
    (its own mouse, scene, camera and behaviour bouts, 640 x 480 at :data:`LIFTED_FPS`);
    every frame goes through :class:`~mouse_lifter_ros.core.pipeline.PosePipeline` with
    the shipped models (2D keypoints, depth, lifter, one thread); the classifier is fed
    the lifter's positions and valid flags, and a frame without a mouse has no usable
    keypoint. These carry what the lifter really gets wrong (paws always filled, a
    rearing head read low), which the corruption of :func:`synthetic_clip` does not.
    ``cache``: a folder where the lifted poses are kept between runs, keyed by seed,
    index, length and the models' bytes.
    """
    path = None if cache is None else _cache_path(Path(cache), seed, index, seconds)
    if path is not None and path.exists():
        with np.load(path) as z:
            stamps, kp, valid, labels = z["stamps"], z["keypoints"], z["valid"], z["labels"]
    else:
        stamps, kp, valid, labels = _render_and_lift(seed, index, seconds)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, stamps=stamps, keypoints=kp, valid=valid, labels=labels)
            tmp.replace(path)
    # The filler ignores invalid keypoints; the lifter's filled positions stay out.
    clip = Clip(stamps=stamps, keypoints=kp, valid=valid, labels=labels.astype(np.intp),
                noise_mm=math.nan, drop_rate=0.0, invalid_rate=float(1.0 - valid.mean()))
    return clip, prepare_stream(clip.stamps, clip.keypoints, clip.valid)


def _cache_path(cache: Path, seed: int, index: int, seconds: float) -> Path:
    """The cache file of a lifted sequence, keyed by the models' files (networks and
    YAMLs: new models or a model run another way, new poses) and by the source of the
    core modules that render the sequences and turn images into poses."""
    return cache / f"lifted_s{seed}_i{index}_{seconds:g}s_{_lifting_digest()}.npz"


@functools.cache
def _lifting_digest() -> str:
    """:func:`_cache_path`'s key over the files that decide the lifted poses: hashed
    once per process, not once per sequence (about 6 MB)."""
    models = DEFAULT_MODEL.parents[1]
    digest = hashlib.sha256()
    for folder in ("keypoints2d", "depth"):
        for path in sorted((models / folder).glob("*")):
            if path.suffix in (".onnx", ".yaml"):
                digest.update(path.read_bytes())
    core = Path(__file__).resolve().parents[1] / "core"
    for name in _LIFTING_MODULES:
        digest.update((core / name).read_bytes())
    for path in sorted((core / "synth").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


#: The core modules whose code decides the lifted poses, besides the engine's
#: (:func:`_cache_path`).
_LIFTING_MODULES: Final = ("pipeline.py", "keypoints.py", "tracking.py", "depth.py",
                           "lifter.py", "bodyfit.py", "body.py")


def _render_and_lift(seed: int, index: int, seconds: float) -> tuple[
        FloatArray, FloatArray, BoolArray, NDArray[np.intp]]:
    """(T,) stamps, (T, 14, 3) lifted positions, (T, 14) valid flags and (T,) labels of
    the rendered sequence (:func:`lifted_clip`)."""
    from mouse_lifter_ros.core.arena import arena_from_camera
    from mouse_lifter_ros.core.pipeline import PosePipeline
    from mouse_lifter_ros.core.synth.dataset import SynthConfig, render_item

    config = SynthConfig(count=1, seed=seed, view="top", sequence_s=seconds,
                         fps=LIFTED_FPS, colour=None)
    index_of = {c: i for i, c in enumerate(CLASS_NAMES)}
    pipe: PosePipeline | None = None
    rows: list[tuple[float, FloatArray, BoolArray, int]] = []
    for sample, label, t in render_item(config, index).frames:
        if pipe is None:
            pipe = PosePipeline(arena_from_camera(sample.camera), threads=1)
        lifted = pipe(sample.image, float(t)).lifted
        if lifted is None:
            pos, ok = np.full((_N_KP, 3), np.nan), np.zeros(_N_KP, dtype=bool)
        else:
            pos, ok = lifted.positions, np.asarray(lifted.valid, dtype=bool)
        rows.append((float(t), pos, ok, index_of[BEHAVIOR_CLASSES[label]]))
    stamps = np.array([r[0] for r in rows])
    kp = np.array([r[1] for r in rows])
    valid = np.array([r[2] for r in rows])
    labels = np.array([r[3] for r in rows], dtype=np.intp)
    return stamps, kp, valid, labels


def make_clips(seed: int, indices: abc.Sequence[int], seconds: float, progress: bool,
               what: str, workers: int, *, lifted: bool = False,
               cache: str | Path | None = None) -> list[tuple[Clip, Stream]]:
    """Sequences ``SeedSequence([seed, i])`` for ``i`` in ``indices``, in order:
    :func:`synthetic_clip`, or :func:`lifted_clip` when ``lifted``.

    ``workers`` > 1 makes them in that many processes (the same results); ``progress``
    prints a line on stderr now and then, naming ``what`` is made.
    """
    out: list[tuple[Clip, Stream]] = []
    start = time.monotonic()
    make: abc.Callable[[int], tuple[Clip, Stream]] = (
        functools.partial(lifted_clip, seed, seconds=seconds, cache=cache) if lifted
        else functools.partial(synthetic_clip, seed, seconds=seconds))
    with contextlib.ExitStack() as stack:
        if workers > 1 and len(indices) > 1:
            pool = stack.enter_context(ProcessPoolExecutor(min(workers, len(indices))))
            results: abc.Iterable[tuple[Clip, Stream]] = pool.map(make, indices,
                                                                  chunksize=2)
        else:
            results = map(make, indices)
        for k, item in enumerate(results):
            out.append(item)
            if progress and ((k + 1) % (5 if lifted else 25) == 0 or k + 1 == len(indices)):
                print(f"[behavior] {what}: {k + 1}/{len(indices)} sequences "
                      f"({time.monotonic() - start:.0f} s)", file=sys.stderr, flush=True)
    return out
