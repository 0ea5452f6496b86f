"""Batch analysis on Dask: ``mouse-lifter analyze`` over a lab's archive, on every core of
one machine, on a running Dask cluster, or on a SLURM / PBS / SGE / LSF cluster that
``dask-jobqueue`` starts.

:func:`analyze_batch` writes what :func:`~.analysis.analyze` writes, the same files with
the same rows and values, and beside them:

``batch_manifest.json``
    Per movie: the input (path, size, modification time), a key over the input, the
    options that change results and the SHA-256 of the model and arena files, its status
    (``done`` or ``failed``) and its summary. A re-run skips every movie that is done
    under the same key and whose files are all there.
``batch_summary.csv``, ``batch_summary.json``
    Per movie: status (``done``, ``skipped``: done by an earlier run, ``failed``), frames,
    seconds, problems (what of it could not be read) and the error of a failed one.
``.batch/``
    Work files: each task's frames (``<stem>-<key>/frames-<first frame>.npz``), so that
    an interrupted batch resumes task by task, removed once the movie is done; and each
    movie's track (``track.npz``, compressed), from which later runs write the
    annotations table over all movies.

How a movie is cut into tasks, and why the seams do not show
--------------------------------------------------------------
A video longer than ``chunk_frames`` is cut into ranges of that many frames. A task runs
the networks over one range (:func:`~.analysis.observe`: the detector, the 2D keypoint
and the depth networks and the depth readings, which see each frame on its own and carry
no state from one frame to the next), seeking to its first frame. Everything that does
carry state, the lifter (its 1-euro filter, its warm start and the body scale it learns
from a movie's first frames), the behaviour classifier's window, the median filter and
the locomotion's smoothing and hysteresis, runs once per movie over the joined ranges
(:func:`~.analysis.track_of`), in frame order, exactly as one pass over the movie. So
no warm-up overlap is needed and there are no warm-up rows to drop: the joined output is
the serial run's, row for row and bit for bit (the test compares them).

What that rests on is that a seek lands on the right frame. Every task records the
container timestamp and a SHA-1 of the pixels of its first frame and of the frame after
its last one; the join checks that each range starts with the very frame the range
before stopped at (:func:`~.analysis.seam_problems`). Should a seek have landed
elsewhere (a file with broken timestamps), that movie is read again from its start
without seeking, and its summary says so. Rosbag2 inputs and videos whose header gives
no frame count are one task each.

Resumable and safe
------------------
Each task writes its file under a temporary name and renames it into place (atomic on
one file system); a movie's output files are written into ``.batch/`` and renamed into
the output folder one by one, and only then does the manifest, written the same way,
record the movie as done. A worker killed mid-task is replaced and its task run again
(Dask reschedules it; a task whose file exists returns it without recomputing); the rows
come from the task files, one per range, so none is duplicated or missing. A movie that
fails (a broken file, an exception) is reported in the summary and the manifest, and the
batch goes on; the result's ``failed`` names them.

Where it runs
-------------
``scheduler`` (``tcp://HOST:PORT``): a running Dask cluster; its workers must reach the
output folder and the inputs by the same paths (a shared file system) and have this
package installed. Else ``cluster``: ``local`` (default) starts one single-threaded
worker process per core (``workers`` to choose), or ``slurm``, ``pbs``, ``sge``, ``lsf``
start a ``dask-jobqueue`` cluster with ``cluster_options`` (its keyword arguments, e.g.
``queue``, ``cores``, ``memory``, ``walltime``, ``account``; the rest from its
``jobqueue.yaml``) that scales between 0 and ``workers`` (default: one per task) workers.
ONNX Runtime and OpenCV use ``AnalysisOptions.threads`` threads per worker (0: the cores
divided among the local workers, 1 on other clusters), and Dask starts workers with one
BLAS/OpenMP thread, so the cores are not oversubscribed.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from mouse_lifter_ros.core.analysis import (
    AnalysisOptions,
    Movie,
    MovieSource,
    Observed,
    Track,
    check_options,
    load_models,
    model_spec,
    movie_outputs,
    observe,
    seam_problems,
    summary,
    track_of,
)
from mouse_lifter_ros.core.errors import MouseLifterError, ParameterError
from mouse_lifter_ros.core.options import boolean, none_or, option, option_problems

if TYPE_CHECKING:
    from distributed import Client, Future

    from mouse_lifter_ros.core.arena import ArenaCalibration
    from mouse_lifter_ros.core.keypoints import KeypointModel, ModelSpec
    from mouse_lifter_ros.core.pipeline import PosePipeline

#: ``local`` or a dask-jobqueue cluster.
CLUSTERS: Final = ("local", "slurm", "pbs", "sge", "lsf")
_JOBQUEUE: Final = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster",
                    "lsf": "LSFCluster"}
#: Frames per task of one video: 5 min at 30 fps.
CHUNK_FRAMES: Final = 9000
MANIFEST: Final = "batch_manifest.json"
SUMMARY: Final = "batch_summary"
WORK: Final = ".batch"
#: Bumped when the work files or what a key covers change: older ones are not reused.
FORMAT: Final = 1
#: AnalysisOptions fields that change no output file (left out of a movie's key).
_NOT_IN_KEY: Final = frozenset({"out", "progress", "threads"})


def _int_in(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _none_text(text: str) -> str | None:
    """Command-line text, with ``none`` (or nothing) for None."""
    return None if text.strip().lower() in ("", "none") else text


_WHERE: Final = "batch: where it runs (Dask)"


@dataclass(frozen=True)
class BatchOptions:
    """Where and how :func:`analyze_batch` runs (module docstring); each field is a
    ``mouse-lifter analyze`` option given and checked by its
    :class:`~.options.Option`, as :class:`~.analysis.AnalysisOptions`' are.

    Attributes
    ----------
    scheduler:
        Address of a running Dask scheduler, ``tcp://HOST:PORT`` (None: start a cluster).
    cluster:
        One of :data:`CLUSTERS`, when no ``scheduler``.
    cluster_options:
        Keyword arguments of the dask-jobqueue cluster (``queue``, ``cores``,
        ``memory``, ``walltime``, ...); only with a dask-jobqueue ``cluster``.
    workers:
        Local: worker processes (None: one per core). dask-jobqueue: the most workers
        it scales to (None: one per task).
    chunk_frames:
        Frames per task of a long video (0: one task per movie).
    retries:
        Times a task that raised is run again (a killed worker's task always is).
    resume:
        Skip movies done by an earlier run with the same key; False: redo them all.
    nwb:
        Also write ``<stem>.nwb`` per movie (:func:`~.nwb.write_nwb`).
    dashboard:
        Local cluster: the dashboard's address (``:8787``; ``:0`` any free port; None:
        no dashboard).
    """

    scheduler: str | None = option(
        None, "--scheduler", "run on this running Dask scheduler instead of starting a "
        "cluster; its workers need this package and the same paths",
        valid=none_or(lambda v: isinstance(v, str) and "://" in v),
        allowed="a Dask scheduler address, tcp://HOST:PORT", metavar="tcp://HOST:PORT",
        group=_WHERE)
    cluster: str = option(
        "local", "--cluster", "start this cluster: local (one worker per core) or "
        f"{', '.join(CLUSTERS[1:])} through dask-jobqueue (default local)",
        valid=lambda v: v in CLUSTERS, allowed=f"one of {', '.join(CLUSTERS)}",
        metavar="KIND", group=_WHERE)
    cluster_options: Mapping[str, Any] | None = option(
        None, "--cluster-options", "the dask-jobqueue cluster's keyword arguments as a JSON "
        'object, e.g. \'{"queue": "short", "cores": 8, "memory": "16GB", "walltime": '
        '"02:00:00"}\' (the rest from its jobqueue.yaml)',
        valid=none_or(lambda v: isinstance(v, Mapping)),
        allowed="a JSON object of the dask-jobqueue cluster's keyword arguments",
        parse=json.loads, metavar="JSON", group=_WHERE)
    workers: int | None = option(
        None, "--workers", "worker processes (local; default one per core), or the most "
        "the dask-jobqueue cluster scales to (default one per task)",
        valid=none_or(_int_in(1, 10000)), allowed="an integer from 1 to 10000",
        parse=int, metavar="N", group=_WHERE)
    chunk_frames: int = option(
        CHUNK_FRAMES, "--chunk-frames", "frames per task of a long video; the joined "
        f"output equals one pass's (0: one task per movie; default {CHUNK_FRAMES})",
        valid=_int_in(0, 10**9), allowed="an integer >= 0 (frames; 0: one task per movie)",
        parse=int, metavar="FRAMES", group=_WHERE)
    retries: int = option(
        1, "--retries", "times a task that failed is run again (a killed worker's task is "
        "always run again; default 1)", valid=_int_in(0, 10),
        allowed="an integer from 0 to 10", parse=int, metavar="N", group=_WHERE)
    resume: bool = option(
        True, "--resume", "skip movies an earlier run into --out finished with the same "
        "input, options and models (default: on)", valid=boolean,
        allowed="true or false", group=_WHERE)
    nwb: bool = option(
        False, "--nwb", "also write STEM.nwb per movie (NWB with ndx-pose: 2D and 3D "
        "keypoints, camera and arena calibration, behaviour bouts)", valid=boolean,
        allowed="true or false")
    dashboard: str | None = option(
        ":8787", "--dashboard", "local cluster: the Dask dashboard's address (:0 any free "
        "port, none: no dashboard; default :8787)",
        valid=none_or(lambda v: isinstance(v, str)), allowed="an address such as :8787, "
        "or none", parse=_none_text, metavar="ADDRESS", group=_WHERE)


def batch_problems(batch: BatchOptions) -> list[str]:
    """Every problem of ``batch``, each naming the option's flag, its value and what is
    allowed (:class:`~.options.Option`)."""
    problems = list(option_problems(batch).values())
    if isinstance(batch.cluster_options, Mapping) and batch.cluster_options and (
            batch.cluster == "local" or batch.scheduler is not None):
        problems.append(f"--cluster-options {batch.cluster_options!r}: only with --cluster "
                        f"{' / '.join(_JOBQUEUE)} (not with a local cluster or --scheduler)")
    return problems


def plan_chunks(frames: int | None, *, chunk_frames: int,
                max_frames: int | None = None) -> list[tuple[int, int | None]]:
    """The frame ranges ``(start, stop)`` the tasks of one movie analyse.

    ``frames`` is the movie's frame count as its header gives it (None: unknown, one
    task); the last range has ``stop`` ``max_frames`` (None: to the movie's end, which
    may lie before or after what the header said). ``chunk_frames`` 0: one range.
    """
    n = frames if max_frames is None else min(frames or max_frames, max_frames)
    if n is None or chunk_frames <= 0 or n <= chunk_frames:
        return [(0, max_frames)]
    starts = list(range(0, n, chunk_frames))
    return [(s, s + chunk_frames) for s in starts[:-1]] + [(starts[-1], max_frames)]


# ---------------------------------------------------------------------------- keys


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_hashes(spec: ModelSpec, options: AnalysisOptions) -> dict[str, str]:
    """SHA-256 of every file the analysis loads besides the movies: the 2D model (YAML,
    network, detector), with an arena the depth model and the arena calibration."""
    from mouse_lifter_ros.core.keypoints import load_detector_spec

    files = [spec.path, spec.onnx]
    if spec.detector is not None:
        files += [spec.detector, load_detector_spec(spec.detector).onnx]
    if options.arena is not None:
        from mouse_lifter_ros.core.depth import load_depth_spec

        depth = load_depth_spec(None if options.depth_model is None
                                else Path(options.depth_model))
        files += [depth.path, depth.onnx, depth.detector, Path(options.arena)]
    return {str(p): _sha256(Path(p)) for p in dict.fromkeys(files)}


def _input_identity(movie: Movie) -> dict[str, Any]:
    paths = sorted(p for p in movie.path.iterdir() if p.is_file()) \
        if movie.path.is_dir() else [movie.path]
    return {"input": str(movie.path.resolve()),
            "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in paths]}


def movie_key(movie: Movie, options: AnalysisOptions, models: Mapping[str, str]) -> str:
    """16 hex digits over the input (path, sizes, modification times), every option
    that changes an output and the model files' hashes: equal keys, equal outputs."""
    opts = {f.name: getattr(options, f.name) for f in fields(options)
            if f.name not in _NOT_IN_KEY}
    payload = {"format": FORMAT, **_input_identity(movie), "options": opts,
               "models": dict(models)}
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- files


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary file beside ``path`` (hidden, same suffix) and rename it to
    ``path``."""
    tmp = path.with_name(f".{uuid.uuid4().hex[:8]}.{path.name}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save_npz(path: Path, arrays: Mapping[str, Any], meta: Mapping[str, Any], *,
              compressed: bool = False) -> None:
    save = np.savez_compressed if compressed else np.savez

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            save(fh, meta=np.asarray(json.dumps(meta)),
                 **{k: v for k, v in arrays.items() if v is not None})

    _atomic_write(path, write)


def save_observed(path: Path, seen: Observed) -> None:
    """Write one task's :class:`~.analysis.Observed` (atomically)."""
    arrays = {"times": seen.times, "xy": seen.xy, "confidence": seen.confidence,
              "found": seen.found, "readings": seen.readings,
              "depth_found": seen.depth_found}
    meta = {"first": seen.first, "size": seen.size, "fps": seen.fps, "ended": seen.ended,
            "problems": seen.problems, "seams": seen.seams}
    _save_npz(path, arrays, meta)


def load_observed(path: Path) -> Observed:
    """Read what :func:`save_observed` wrote."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        seams = tuple(None if s is None else (s[0], s[1]) for s in meta["seams"])
        return Observed(first=int(meta["first"]), times=z["times"], xy=z["xy"],
                        confidence=z["confidence"], found=z["found"],
                        readings=z.get("readings"),
                        depth_found=z.get("depth_found"),
                        size=None if meta["size"] is None else tuple(meta["size"]),
                        fps=meta["fps"], ended=bool(meta["ended"]),
                        problems=list(meta["problems"]), seams=(seams[0], seams[1]))


def save_track(path: Path, track: Track) -> None:
    """Write a movie's :class:`~.analysis.Track` (atomically, compressed: it stays, for
    the annotations table of later runs)."""
    arrays = {"times": track.times, "xy": track.xy, "likelihood": track.likelihood,
              "found": track.found, "positions": track.positions, "depth": track.depth,
              "behavior": np.asarray(track.behavior, dtype=str),
              "behavior_probability": track.behavior_probability}
    meta = {"fps": track.fps, "size": track.size, "problems": track.problems}
    _save_npz(path, arrays, meta, compressed=True)


def load_track(path: Path) -> Track:
    """Read what :func:`save_track` wrote."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return Track(times=z["times"], xy=z["xy"], likelihood=z["likelihood"],
                     found=z["found"], positions=z.get("positions"),
                     depth=z.get("depth"),
                     behavior=[str(b) for b in z["behavior"]],
                     behavior_probability=z["behavior_probability"], fps=float(meta["fps"]),
                     size=(int(meta["size"][0]), int(meta["size"][1])),
                     problems=list(meta["problems"]))


def load_manifest(out: Path) -> dict[str, Any]:
    """The output folder's manifest (empty when there is none, or one of another format:
    then nothing is skipped)."""
    path = out / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"format": FORMAT, "movies": {}}
    if not isinstance(data, dict) or data.get("format") != FORMAT \
            or not isinstance(data.get("movies"), dict):
        return {"format": FORMAT, "movies": {}}
    return data


def _write_json(path: Path, data: Any) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    _atomic_write(path, write)


def _is_done(entry: Mapping[str, Any] | None, key: str, out: Path, nwb: bool) -> bool:
    """A movie done under ``key``, all its files there (its NWB file too if ``nwb``)."""
    if not entry or entry.get("status") != "done" or entry.get("key") != key:
        return False
    files = entry.get("result", {}).get("files", {})
    if nwb and "nwb" not in files:
        return False
    return all((out / f).is_file() for f in [*files.values(), entry.get("track", "")])


# ---------------------------------------------------------------------------- worker side


@dataclass(frozen=True)
class _Job:
    """What a worker needs to know about one movie."""

    movie: Movie
    options: AnalysisOptions
    work: Path
    out: Path
    nwb: bool


_MODELS: dict[tuple[Any, ...], tuple[KeypointModel, PosePipeline | None,
                                     ArenaCalibration | None]] = {}


def _models(options: AnalysisOptions
            ) -> tuple[KeypointModel, PosePipeline | None, ArenaCalibration | None]:
    """The models, loaded once per worker thread (the lifter keeps state)."""
    key = (threading.get_ident(), options.keypoint_model, options.depth_model, options.view,
           options.device, options.threads, options.arena, options.p_cutoff)
    if key not in _MODELS:
        import cv2

        from mouse_lifter_ros.core.arena import load_arena

        cv2.setNumThreads(max(1, options.threads))
        arena = None if options.arena is None else load_arena(options.arena)
        spec = model_spec(options, arena)
        model, pipe = load_models(spec, arena, options)
        _MODELS[key] = (model, pipe, arena)
    return _MODELS[key]


def _observe_task(job: _Job, start: int, stop: int | None, path: str) -> dict[str, Any]:
    """One range of one movie through the networks, into ``path`` (kept if there)."""
    target = Path(path)
    if not target.is_file():
        model, pipe, arena = _models(job.options)
        seen = observe(job.movie, job.options, model, pipe, arena, start=start, stop=stop)
        save_observed(target, seen)
    else:
        seen = load_observed(target)
    return {"path": path, "frames": len(seen.times)}


def _finish_task(job: _Job, paths: Sequence[str], *ranges: Any) -> dict[str, Any]:
    """Join one movie's ranges, run the stateful stages, write its files (atomically)."""
    model, pipe, arena = _models(job.options)
    movie = job.movie
    parts = [load_observed(Path(p)) for p in paths]
    notes = []
    seams = seam_problems(parts)
    if seams:
        notes.append("the seek into the video did not land on the frame it should have ("
                     + "; ".join(seams) + "): the movie was read again from its start")
        parts = [observe(movie, job.options, model, pipe, arena,
                         stop=job.options.max_frames, seek=False)]
    track = track_of(parts, movie, job.options, model.names, pipe, arena)
    stage = job.work / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    result = movie_outputs(stage, movie, track, model, job.options)
    if job.nwb:
        from mouse_lifter_ros.core.nwb import write_nwb

        nwb = stage / f"{movie.stem}.nwb"
        write_nwb(nwb, track=track, names=model.names, skeleton=model.spec.skeleton,
                  video=movie.path, scorer=model.description, video_relative_to=job.out,
                  arena=None if arena is None else arena.scaled(*track.size))
        result["files"]["nwb"] = str(nwb)
    track_path = job.work / "track.npz"
    save_track(track_path, track)
    files = {}
    for name, staged in result["files"].items():
        final = job.out / Path(staged).name
        os.replace(staged, final)
        files[name] = str(final)
    shutil.rmtree(stage, ignore_errors=True)
    return {**result, "files": files, "notes": notes, "track": str(track_path)}


# ---------------------------------------------------------------------------- client side


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def jobqueue_cluster(kind: str, options: Mapping[str, Any]) -> Any:
    """A dask-jobqueue cluster of ``kind`` (``slurm``, ``pbs``, ``sge``, ``lsf``) built from
    ``options`` (its keyword arguments) and its ``jobqueue.yaml``; no job is submitted
    until it scales. One single-threaded worker per core unless ``processes`` says
    otherwise. :class:`ParameterError` naming the options it rejects."""
    import dask_jobqueue

    kwargs = dict(options)
    if "cores" in kwargs and "processes" not in kwargs:
        kwargs["processes"] = kwargs["cores"]
    try:
        return getattr(dask_jobqueue, _JOBQUEUE[kind])(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"--cluster {kind} --cluster-options "
                             f"{json.dumps(dict(options))}: dask-jobqueue's "
                             f"{_JOBQUEUE[kind]} refuses them: {exc}") from None


@contextlib.contextmanager
def _client(batch: BatchOptions, tasks: int, threads: int
            ) -> Iterator[tuple[Client, int, str]]:
    """A Dask client, the ONNX Runtime threads per worker and where it runs."""
    import logging

    from distributed import Client, LocalCluster

    if batch.scheduler is not None:
        with Client(batch.scheduler, timeout="30s") as client:  # type: ignore[no-untyped-call]
            yield client, threads or 1, f"scheduler {batch.scheduler}"
        return
    if batch.cluster == "local":
        cores = _cores()
        workers = batch.workers or cores
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers, threads_per_worker=1, processes=True,
            dashboard_address=batch.dashboard, silence_logs=logging.CRITICAL)
        with cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield (client, threads or max(1, cores // workers),
                   f"local cluster, {workers} workers")
        return
    cluster = jobqueue_cluster(batch.cluster, batch.cluster_options or {})
    try:
        cluster.adapt(minimum=0, maximum=batch.workers or max(1, tasks))
        with Client(cluster) as client:  # type: ignore[no-untyped-call]
            yield client, threads or 1, f"{batch.cluster} cluster, up to " \
                f"{batch.workers or max(1, tasks)} workers"
    finally:
        cluster.close()


def _stderr(message: str) -> None:
    print(f"mouse-lifter analyze: {message}", file=sys.stderr)


def _error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _tidy(out: Path, stem: str, key: str) -> None:
    """Once ``stem`` is recorded done under ``key``: its work folder keeps only its track
    (not the tasks' files, nor those a killed task left half written), and the folders
    of its earlier keys go."""
    for folder in (out / WORK).iterdir():
        name, _, k = folder.name.rpartition("-")
        if name != stem or not folder.is_dir():
            continue
        if k != key:
            shutil.rmtree(folder, ignore_errors=True)
            continue
        for f in folder.iterdir():
            if f.is_dir():
                shutil.rmtree(f, ignore_errors=True)
            elif f.name != "track.npz":
                f.unlink(missing_ok=True)


def _failed(movie: Movie, index: int, key: str, exc: BaseException, seconds: float,
            entries: dict[str, Any], rows: dict[str, dict[str, Any]],
            notice: Callable[[str], None]) -> None:
    """Record ``movie`` as failed with ``exc`` (one line, no traceback) and say so."""
    error = _error(exc)
    rows[movie.stem] = {"movie": index, "input": str(movie.path), "seconds": seconds,
                        "status": "failed", "frames": 0, "problems": [], "error": error}
    entries[movie.stem] = {"input": str(movie.path), "key": key, "status": "failed",
                           "error": error}
    notice(f"{movie.path}: failed: {error}")


def _write_summary(out: Path, rows: Sequence[Mapping[str, Any]]) -> tuple[Path, Path]:
    columns = ["movie", "input", "status", "frames", "seconds", "problems", "error"]
    path_csv, path_json = out / f"{SUMMARY}.csv", out / f"{SUMMARY}.json"

    def write_csv(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, columns)
            w.writeheader()
            for r in rows:
                w.writerow({c: "; ".join(r[c]) if c == "problems" else r[c] for c in columns})

    _atomic_write(path_csv, write_csv)
    _write_json(path_json, [{c: r[c] for c in columns} for r in rows])
    return path_csv, path_json


def _annotations(out: Path, options: AnalysisOptions, names: Sequence[str],
                 tracks: Sequence[tuple[int, Path]]) -> Path:
    """The annotations table over the done movies, in input order (atomically)."""
    from mouse_lifter_ros.core.analysis import annotate
    from mouse_lifter_ros.core.pose_files import AnnotationsWriter

    table = out / f"annotations.{options.fmt}"

    def write(tmp: Path) -> None:
        frame0, offset = 0, 0.0
        with AnnotationsWriter(tmp, names, fmt=options.fmt,  # type: ignore[arg-type]
                               checkpoint_every=0, overwrite=True) as writer:
            for index, path in tracks:
                track = load_track(path)
                annotate(writer, track, index, frame0, offset)
                frame0 += len(track.times)
                offset += len(track.times) / track.fps

    _atomic_write(table, write)
    return table


def _run(todo: Sequence[Movie], index: Mapping[str, int],
         plans: Mapping[str, tuple[int | None, list[tuple[int, int | None]]]],
         keys: Mapping[str, str], options: AnalysisOptions, batch: BatchOptions, out: Path,
         manifest: dict[str, Any], rows: dict[str, dict[str, Any]],
         notice: Callable[[str], None]) -> tuple[str, str | None, int]:
    """Submit the tasks of the movies ``todo`` (``index``: their input numbers), follow
    them to the end with one progress bar, record each movie in ``manifest`` (written
    after each) and ``rows``; return where it ran, the dashboard's address and the
    number of tasks."""
    from distributed import as_completed
    from tqdm import tqdm

    entries: dict[str, Any] = manifest["movies"]
    tasks = sum(len(ranges) + 1 for _, ranges in plans.values())
    with _client(batch, tasks, options.threads) as (client, threads, where):
        local = batch.scheduler is None and batch.cluster == "local"
        dashboard = None if local and batch.dashboard is None else client.dashboard_link
        notice(f"running on a {where}" + (f"; Dask dashboard: {dashboard}" if dashboard
                                          else ""))
        opts = replace(options, threads=threads, progress=False)
        futures: dict[Future[Any], tuple[str, Movie]] = {}
        started: dict[str, float] = {}
        total = 0
        for m in todo:
            key = keys[m.stem]
            work = out / WORK / f"{m.stem}-{key}"
            work.mkdir(parents=True, exist_ok=True)
            job = _Job(m, opts, work, out, batch.nwb)
            count, ranges = plans[m.stem]
            paths, deps = [], []
            for first, stop in ranges:
                path = work / f"frames-{first:09d}.npz"
                paths.append(str(path))
                if path.is_file():  # done by an interrupted run
                    continue
                deps.append(client.submit(_observe_task, job, first, stop, str(path),
                                          key=f"observe-{m.stem}-{key}-{first}",
                                          retries=batch.retries, pure=False))
                futures[deps[-1]] = ("observe", m)
                end = stop if stop is not None else count
                total += max(0, end - first) if end is not None else 0
            finish = client.submit(_finish_task, job, paths, *deps, key=f"finish-{m.stem}-{key}",
                                   retries=batch.retries, pure=False)
            futures[finish] = ("finish", m)
            started[m.stem] = time.monotonic()
        bar = tqdm(total=total or None, unit="frame", desc="batch", file=sys.stderr,
                   disable=not options.progress)
        finished = 0
        try:
            for future in as_completed(list(futures)):  # type: ignore[no-untyped-call]
                kind, m = futures[future]
                exc = future.exception() if future.status == "error" else None
                if kind == "observe":
                    if exc is None:
                        bar.update(future.result()["frames"])
                    continue
                finished += 1
                seconds = round(time.monotonic() - started[m.stem], 2)
                base = {"movie": index[m.stem], "input": str(m.path), "seconds": seconds}
                if exc is not None:
                    _failed(m, index[m.stem], keys[m.stem], exc, seconds, entries, rows,
                            notice)
                else:
                    r = dict(future.result())
                    notes, track = r.pop("notes"), r.pop("track")
                    for note in notes:
                        notice(f"{m.path}: {note}")
                    r["files"] = {k: Path(v).name for k, v in r["files"].items()}
                    entries[m.stem] = {"input": str(m.path), "key": keys[m.stem],
                                       "status": "done", "frames": r["frames"],
                                       "problems": r["problems"], "notes": notes,
                                       "track": str(Path(track).relative_to(out)),
                                       "result": r}
                    rows[m.stem] = {**base, "status": "done", "frames": r["frames"],
                                    "problems": r["problems"], "error": ""}
                _write_json(out / MANIFEST, manifest)
                if exc is None:
                    _tidy(out, m.stem, keys[m.stem])
                bar.set_postfix_str(f"{finished}/{len(todo)} movies")
        finally:
            bar.close()
    return where, dashboard, len(futures)


def analyze_batch(inputs: Sequence[str | os.PathLike[str]], options: AnalysisOptions, *,
                  batch: BatchOptions | None = None,
                  notice: Callable[[str], None] = _stderr) -> dict[str, Any]:
    """Analyse every movie of ``inputs`` as Dask tasks (module docstring).

    Parameters
    ----------
    inputs, options:
        As :func:`~.analysis.analyze`.
    batch:
        Where and how (:class:`BatchOptions`; None: the defaults, a local cluster).
    notice:
        Called with a line for the user: where it runs and the dashboard's address,
        2D only, each movie's problems and each failure.

    Returns
    -------
    dict
        :func:`~.analysis.analyze`'s summary (``movies`` in input order, each with its
        ``status``; a failed one has ``error`` instead of files), plus ``failed`` (the
        inputs that failed) and ``batch``: the manifest, the summary files, where it
        ran, the dashboard, the tasks run and the movies done, skipped and failed.

    Raises
    ------
    ParameterError
        Every invalid option of ``options`` and ``batch`` at once, before anything runs.
    """
    batch = batch or BatchOptions()
    start = time.monotonic()
    problems = batch_problems(batch)
    try:
        movies, arena, spec = check_options(inputs, options)
    except ParameterError as exc:
        if problems:
            raise ParameterError(str(exc) + "\n  " + "\n  ".join(problems)) from None
        raise
    if problems:
        raise ParameterError("analyze: invalid options:\n  " + "\n  ".join(problems))
    if batch.nwb:
        import pynwb  # noqa: F401  (fail before anything runs)
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / WORK).mkdir(exist_ok=True)
    if arena is None:
        notice("no --arena: 2D only. The 3D columns (z, X, Y, Z in metres) of the "
               "annotations stay empty, no behaviour is classified, and locomotion is in "
               "pixels. Give the camera's arena calibration (mouse-lifter calibrate) for 3D.")
    models = model_hashes(spec, options)
    manifest = load_manifest(out)
    manifest["models"] = models
    entries: dict[str, dict[str, Any]] = manifest["movies"]
    keys = {m.stem: movie_key(m, options, models) for m in movies}
    todo = [m for m in movies if not (batch.resume and _is_done(
        entries.get(m.stem), keys[m.stem], out, batch.nwb))]
    plans: dict[str, tuple[int | None, list[tuple[int, int | None]]]] = {}
    rows: dict[str, dict[str, Any]] = {}
    for m in list(todo):
        try:
            src = MovieSource(m, options.image_topic)
        except MouseLifterError as exc:  # cannot even be opened: failed, the rest runs
            todo.remove(m)
            _failed(m, movies.index(m), keys[m.stem], exc, 0.0, entries, rows, notice)
            continue
        count = src.count
        src.close()
        chunk = batch.chunk_frames if m.kind == "video" else 0  # a bag is one task
        plans[m.stem] = (count, plan_chunks(count, chunk_frames=chunk,
                                            max_frames=options.max_frames))
    for index, m in enumerate(movies):
        if m not in todo and m.stem not in rows:
            e = entries[m.stem]
            rows[m.stem] = {"movie": index, "input": str(m.path), "status": "skipped",
                            "frames": e["frames"], "seconds": 0.0,
                            "problems": e.get("problems", []), "error": ""}
    where, dashboard, ran = "nothing to run", None, 0
    if todo:
        number = {m.stem: i for i, m in enumerate(movies)}
        where, dashboard, ran = _run(todo, number, plans, keys, options, batch, out, manifest,
                                     rows, notice)
    names = list(spec.output_names)
    results: list[dict[str, Any]] = []
    tracks: list[tuple[int, Path]] = []
    for index, m in enumerate(movies):
        row = rows[m.stem]
        e = entries.get(m.stem, {})
        if row["status"] == "failed":
            results.append({"movie": index, "input": str(m.path), "status": "failed",
                            "error": row["error"]})
            continue
        results.append({"movie": index, **e["result"], "status": row["status"],
                        "files": {k: str(out / v) for k, v in e["result"]["files"].items()}})
        tracks.append((index, out / e["track"]))
        for problem in row["problems"]:
            notice(f"{m.path}: {problem}")
    table = _annotations(out, options, names, tracks)
    summary_rows = [rows[m.stem] for m in movies]
    path_csv, path_json = _write_summary(out, summary_rows)
    failed = [r["input"] for r in summary_rows if r["status"] == "failed"]
    counts = {s: sum(r["status"] == s for r in summary_rows)
              for s in ("done", "skipped", "failed")}
    return {
        **summary(results, table, arena, spec.name, options, start),
        "failed": failed,
        "batch": {"manifest": str(out / MANIFEST), "summary_csv": str(path_csv),
                  "summary_json": str(path_json), "ran_on": where, "dashboard": dashboard,
                  "tasks": ran, **counts},
    }
