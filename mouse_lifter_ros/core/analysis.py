"""Offline analysis of videos and rosbag2 recordings: ``mouse-lifter analyze``.

:func:`analyze` runs the same core as the ROS graph (:class:`~.pipeline.PosePipeline`:
2D keypoints, depth, lifter; then :class:`~.behavior.BehaviorClassifier`) over one or
more movies, ``.mp4``/``.avi`` files or rosbag2 folders, without ROS, and writes per
movie ``<stem>`` into the output folder:

``<stem>.h5``, ``<stem>.csv``
    The 2D keypoints as DeepLabCut writes its predictions (:class:`~.pose_files.DlcWriter`):
    every keypoint of every frame with its likelihood, whatever the p-cutoff; NaN where
    the detector found no mouse.
``<stem>_labelled.mp4``
    The movie with the keypoints, skeleton and trails drawn (:class:`~.overlay.Labeller`,
    :class:`AnalysisOptions` sets the style), and a text line: frame, time, the
    rest/movement state and, in 3D, the behaviour.
``<stem>_jumps.png``, ``<stem>_likelihood.png``, ``<stem>_coordinates.png``,
``<stem>_trajectory.png``
    The four preview plots (:mod:`~.plots`).
``<stem>_locomotion.csv``, ``<stem>_locomotion.json``
    Per frame the centre of mass (x, y), its speed and the rest/movement state, and the
    summary: distance travelled, mean speed, time moving and resting (:mod:`~.locomotion`).
    The unit is in the column names and the summary's ``unit``: metres with an arena
    calibration, pixels without.

and one annotations table across all movies, ``annotations.csv`` or
``annotations.parquet`` (:class:`~.pose_files.AnnotationsWriter`: the Inscopix IDEAS columns
with ``Movie number`` 0, 1, ... in the order given, ``Frame number`` counting across the
movies, ``Local frame number`` within each and ``Time since start (s)`` from the start of
the first movie, the movies laid end to end; then depth, 3D and behaviour).

Without an arena calibration only the 2D stage runs: the 3D columns (``z (m)``, ``X
(m)``, ``Y (m)``, ``Z (m)``) are empty, ``Behavior`` is empty and locomotion is in
pixels. The 3D stage needs the arena calibration of the camera that filmed the movies
(``mouse-lifter calibrate``); frames of another size use it scaled to them.

Median filter: with ``median_window`` >= 3 (odd) the keypoint coordinates (2D x, y in
pixels and 3D X, Y, Z in metres; the depth follows the 3D position) are median filtered
over that many frames (:func:`~.locomotion.median_filter`: NaN stays NaN) before anything
is written or drawn, as the Inscopix IDEAS DeepLabCut tool offers; likelihoods are left
as they are. 0 or 1: no filter.

Every option is checked before any model is loaded or any file written
(:func:`check_options`): one :class:`~.errors.ParameterError` lists every problem,
naming the option, its value and what is allowed.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import MouseLifterError, ParameterError, SourceError
from mouse_lifter_ros.core.keypoints import DEVICES, P_CUTOFF
from mouse_lifter_ros.core.locomotion import (
    MIN_BOUT_S,
    MOVE_SPEED_BODY_LENGTHS,
    MOVE_SPEED_M_S,
    SPEED_WINDOW_S,
    STATE_NAMES,
    Locomotion,
    body_length,
    centre_of_mass,
    locomotion,
    median_filter,
)
from mouse_lifter_ros.core.options import (
    boolean,
    none_or,
    option,
    option_of,
    option_problems,
    parse_names,
)
from mouse_lifter_ros.core.params import is_finite, is_int
from mouse_lifter_ros.core.pose_files import (
    ANNOTATIONS_FORMATS,
    AnnotationsFormat,
    AnnotationsWriter,
)
from mouse_lifter_ros.core.tracking import REDETECT_EVERY, MouseTracker, key_frame_before
from mouse_lifter_ros.core.views import VIEWS

if TYPE_CHECKING:
    from mouse_lifter_ros.core.arena import ArenaCalibration
    from mouse_lifter_ros.core.keypoints import KeypointModel, ModelSpec
    from mouse_lifter_ros.core.overlay import LabelStyle
    from mouse_lifter_ros.core.pipeline import PosePipeline

FloatArray = NDArray[np.float64]
U8 = NDArray[np.uint8]

#: Video files analysed (anything else must be a rosbag2 folder).
VIDEO_SUFFIXES: Final = (".mp4", ".avi")
#: Used for the 2D rest/movement threshold when no body length can be measured, px/s.
FALLBACK_MOVE_SPEED_PX: Final = 20.0


_VIDEO: Final = "labelled video"
_LOCOMOTION: Final = "locomotion"


@dataclass(frozen=True)
class AnalysisOptions:
    """What :func:`analyze` does; each field is a ``mouse-lifter analyze`` option, and
    its :class:`~.options.Option` (``option_of(field)``) says how it is given and checked.

    Attributes
    ----------
    out:
        Output folder (created; files in it are replaced).
    arena:
        Arena calibration YAML (``mouse-lifter calibrate``) for 3D and behaviour; None:
        2D only.
    keypoint_model, depth_model:
        Model YAML files (None: the shipped models).
    device, threads:
        Where ONNX Runtime runs (auto, cpu, cuda) and its CPU threads per network (0:
        its default).
    p_cutoff:
        Likelihood (0..1) below which a keypoint is not used: filled in by the lifter,
        left out of the labelled video, the plots and the 2D centre of mass. The
        DeepLabCut files and the annotations keep every keypoint with its likelihood.
    median_window:
        Median filter length, frames: odd and >= 3, or 0 or 1 for none.
    fmt:
        Annotations table format, ``csv`` or ``parquet``.
    bodyparts:
        Body parts drawn in the labelled video (None: all).
    dot_size:
        Keypoint dot radius in the labelled video, px (None: 3 px at 480 p, scaled).
    colormap:
        Matplotlib colormap of the keypoint colours in the video and plots (None: the
        project's rainbow, as ``label-video``).
    skeleton:
        Draw the skeleton in the labelled video.
    keypoints_only:
        Draw the keypoints on black instead of the video.
    trail_points:
        Earlier frames drawn as a fading trail per keypoint (0: none).
    output_fps:
        Frame rate of the labelled video, Hz (every frame is written; None: the movie's).
    move_speed:
        Speed above which the mouse moves: m/s with an arena, px/s without. None: 0.02
        m/s, or 0.2 body lengths (median nose to tail base) per second in pixels.
    rest_speed:
        Speed below which a moving mouse rests (hysteresis), same unit; None: half of
        ``move_speed``.
    min_bout_s:
        Rest or movement bouts shorter than this take the state of the bout before, s.
    speed_window_s:
        Centred moving average of the centre of mass before speed and distance, s.
    image_topic:
        rosbag2 inputs: the ``sensor_msgs/Image`` topic.
    max_frames:
        Analyse at most this many frames of each movie (None: all).
    progress:
        Show tqdm progress bars on stderr.
    """

    out: str | os.PathLike[str] = option(
        "analysis", "--out", "output folder (files in it are replaced)", required=True)
    arena: str | os.PathLike[str] | None = option(
        None, "--arena", "arena calibration (mouse-lifter calibrate) of the camera: 3D "
        "poses, behaviour and locomotion in metres; without it 2D only, pixels",
        metavar="ARENA.yaml")
    fmt: str = option(
        "csv", "--format", "annotations table: " + " or ".join(ANNOTATIONS_FORMATS),
        valid=lambda v: v in ANNOTATIONS_FORMATS,
        allowed=f"one of {', '.join(ANNOTATIONS_FORMATS)}", metavar="FORMAT")
    p_cutoff: float = option(
        P_CUTOFF, "--p-cutoff", "likelihood below which a keypoint is not used (lifter, "
        "video, plots, 2D locomotion); the files keep every keypoint "
        f"(default {P_CUTOFF:g})", valid=lambda v: is_finite(v) and 0.0 <= v <= 1.0,
        allowed="a number from 0 to 1", parse=float)
    redetect_every: int = option(
        REDETECT_EVERY, "--redetect-every", "the mouse is searched for near where it was "
        "in the frame before, and on the whole frame when it is lost and at every N-th "
        f"frame; 1: each frame on its own (default {REDETECT_EVERY})",
        valid=lambda v: is_int(v) and v >= 1, allowed="an integer >= 1", parse=int,
        metavar="N")
    median_window: int = option(
        0, "--median-window", "median filter of the keypoint coordinates over this many "
        "frames: odd, >= 3; 0 or 1: none (default 0)",
        valid=lambda w: is_int(w) and (w in (0, 1) or (w >= 3 and w % 2 == 1)),
        allowed="an odd integer >= 3 (frames), or 0 or 1 for no filter", parse=int,
        metavar="FRAMES")
    bodyparts: tuple[str, ...] | None = option(
        None, "--bodyparts", "body parts drawn (default: all)", parse=parse_names,
        metavar="A,B,...", group=_VIDEO)
    dot_size: int | None = option(
        None, "--dot-size", "keypoint dot radius (default: 3 px at 480 p, scaled)",
        valid=none_or(lambda v: is_int(v) and 1 <= v <= 100),
        allowed="an integer from 1 to 100 (px)", parse=int, metavar="PX", group=_VIDEO)
    colormap: str | None = option(
        None, "--colormap", "matplotlib colormap of the keypoint colours, e.g. rainbow, "
        "viridis (default: the label-video colours); the plots use it too", group=_VIDEO)
    skeleton: bool = option(
        True, "--skeleton", "draw the skeleton (default: on)", valid=boolean,
        allowed="true or false", group=_VIDEO)
    keypoints_only: bool = option(
        False, "--keypoints-only", "draw on black instead of the video's frames",
        valid=boolean, allowed="true or false", group=_VIDEO)
    trail_points: int = option(
        0, "--trail-points", "frames of fading trail per keypoint (default 0)",
        valid=lambda v: is_int(v) and v >= 0, allowed="an integer >= 0 (frames)",
        parse=int, metavar="N", group=_VIDEO)
    output_fps: float | None = option(
        None, "--output-fps", "frame rate of the labelled video; every frame is written "
        "(default: the movie's)", valid=none_or(lambda v: is_finite(v) and v > 0),
        allowed="a frame rate > 0 (Hz), or none for the movie's", parse=float,
        metavar="HZ", group=_VIDEO)
    move_speed: float | None = option(
        None, "--move-speed", f"moving above this speed: m/s with --arena (default "
        f"{MOVE_SPEED_M_S:g}), px/s without (default {MOVE_SPEED_BODY_LENGTHS:g} body "
        "lengths per second, measured)", valid=none_or(lambda v: is_finite(v) and v > 0),
        allowed="a speed > 0 (m/s with --arena, px/s without)", parse=float,
        metavar="SPEED", group=_LOCOMOTION)
    rest_speed: float | None = option(
        None, "--rest-speed", "resting again below this speed, same unit (default: half "
        "of --move-speed)", valid=none_or(lambda v: is_finite(v) and v >= 0),
        allowed="a speed >= 0 (m/s with --arena, px/s without)", parse=float,
        metavar="SPEED", group=_LOCOMOTION)
    min_bout_s: float = option(
        MIN_BOUT_S, "--min-bout", "shorter rest or movement bouts take the state before "
        f"them (default {MIN_BOUT_S:g})", valid=lambda v: is_finite(v) and v >= 0,
        allowed="a duration >= 0 (s)", parse=float, metavar="SECONDS", group=_LOCOMOTION)
    speed_window_s: float = option(
        SPEED_WINDOW_S, "--speed-window", "moving average of the centre of mass before "
        f"speed and distance (default {SPEED_WINDOW_S:g})",
        valid=lambda v: is_finite(v) and 0 <= v <= 10, allowed="a duration from 0 to 10 (s)",
        parse=float, metavar="SECONDS", group=_LOCOMOTION)
    view: str | None = option(
        None, "--view", "the side the camera sees the mouse from: top, or bottom through "
        "a clear floor (default: the --arena calibration's, else top); it picks the "
        "shipped 2D and depth models", valid=none_or(lambda v: v in VIEWS),
        allowed=" or ".join(VIEWS), metavar="VIEW")
    keypoint_model: str | os.PathLike[str] | None = option(
        None, "--model", "2D model YAML (default: the shipped model of the view)",
        metavar="MODEL.yaml")
    depth_model: str | os.PathLike[str] | None = option(
        None, "--depth-model", "depth model YAML (default: the shipped model of the view)",
        metavar="MODEL.yaml")
    device: str = option(
        "auto", "--device", ", ".join(DEVICES[:-1]) + " or " + DEVICES[-1],
        valid=lambda v: v in DEVICES, allowed=f"one of {', '.join(DEVICES)}")
    threads: int = option(
        0, "--threads", "ONNX Runtime CPU threads per network (0: its default)",
        valid=lambda v: is_int(v) and 0 <= v <= 64,
        allowed="an integer from 0 (ONNX Runtime's default) to 64", parse=int, metavar="N")
    image_topic: str = option(
        "/camera/image_raw", "--image-topic", "rosbag2 inputs: the sensor_msgs/Image topic",
        valid=lambda v: isinstance(v, str) and bool(v.strip()), allowed="a topic name",
        metavar="TOPIC")
    max_frames: int | None = option(
        None, "--max-frames", "analyse at most this many frames of each movie",
        valid=none_or(lambda v: is_int(v) and v >= 1),
        allowed="an integer >= 1, or none for every frame", parse=int, metavar="N")
    progress: bool = option(
        True, "--quiet", "no progress bars", valid=boolean, allowed="true or false",
        negated=True)

    def label_style(self) -> LabelStyle:
        """The labelled video's :class:`~.overlay.LabelStyle`."""
        from mouse_lifter_ros.core.overlay import LabelStyle

        return LabelStyle(bodyparts=self.bodyparts, p_cutoff=self.p_cutoff,
                          dot_size=self.dot_size, colormap=self.colormap,
                          skeleton=self.skeleton, keypoints_only=self.keypoints_only,
                          trail_points=self.trail_points)


#: The command-line flag of each option, as error messages name them.
FLAGS: Final = {f.name: option_of(f).flag for f in fields(AnalysisOptions)}


@dataclass(frozen=True)
class Movie:
    """One input: its path, ``kind`` (``video`` or ``rosbag2``) and the output stem."""

    path: Path
    kind: str
    stem: str


# ---------------------------------------------------------------------------- checks


def movies_of(inputs: Sequence[str | os.PathLike[str]], problems: list[str]) -> list[Movie]:
    """The :class:`Movie` of each input; what is wrong with them goes to ``problems``."""
    movies: list[Movie] = []
    if not inputs:
        problems.append("VIDEO: give at least one .mp4/.avi file or rosbag2 folder")
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            if (path / "metadata.yaml").is_file():
                movies.append(Movie(path, "rosbag2", path.name))
            else:
                problems.append(f"VIDEO '{path}': a folder but not a rosbag2 (no "
                                "metadata.yaml)")
        elif not path.exists():
            problems.append(f"VIDEO '{path}': does not exist")
        elif path.suffix.lower() not in VIDEO_SUFFIXES:
            problems.append(f"VIDEO '{path}': suffix {path.suffix or '(none)'!r}; allowed: "
                            f"{', '.join(VIDEO_SUFFIXES)} files or a rosbag2 folder")
        else:
            movies.append(Movie(path, "video", path.stem))
    stems: dict[str, list[str]] = {}
    for m in movies:
        stems.setdefault(m.stem, []).append(str(m.path))
    for stem, paths in stems.items():
        if len(paths) > 1:
            problems.append(f"VIDEO {', '.join(repr(p) for p in paths)}: all would write "
                            f"'{stem}.*'; rename or analyse them separately")
    return movies


def _image_topic_problems(movies: Sequence[Movie], topic: str) -> list[str]:
    """What is wrong with ``topic`` as the image topic of the rosbag2 ``movies``."""
    from mouse_lifter_ros.core.bag import bag_topics

    problems = []
    for m in movies:
        if m.kind != "rosbag2":
            continue
        try:
            topics = {t.name: t.msgtype for t in bag_topics(m.path)}
        except SourceError as exc:
            problems.append(f"VIDEO '{m.path}': {exc}")
            continue
        if topics.get(topic) != "sensor_msgs/msg/Image":
            images = [n for n, t in topics.items() if t == "sensor_msgs/msg/Image"]
            problems.append(f"{FLAGS['image_topic']} {topic!r}: not an image topic of "
                            f"'{m.path}'; its image topics: {', '.join(images) or 'none'}")
    return problems


def check_options(inputs: Sequence[str | os.PathLike[str]],
                  options: AnalysisOptions) -> tuple[list[Movie], ArenaCalibration | None,
                                                     ModelSpec]:
    """Check the inputs and every option at once; return the movies, the arena
    calibration (None: 2D only) and the keypoint model's description.

    Raises
    ------
    ParameterError
        Listing every problem (option, value, what is allowed).
    """
    from mouse_lifter_ros.core.arena import load_arena

    o = options
    problems: list[str] = []

    def bad(name: str, allowed: str) -> None:
        problems.append(f"{FLAGS[name]} {getattr(o, name)!r}: {allowed}")

    movies = movies_of(inputs, problems)
    invalid = option_problems(o)
    problems.extend(invalid.values())
    out = Path(o.out)
    if out.exists() and not out.is_dir():
        bad("out", "an output folder (this is a file)")
    arena = None
    if o.arena is not None:
        try:
            arena = load_arena(o.arena)
        except MouseLifterError as exc:
            bad("arena", f"an arena calibration YAML (mouse-lifter calibrate): {exc}")
    spec = None
    try:
        spec = model_spec(o, arena)
    except MouseLifterError as exc:
        bad("keypoint_model", f"a 2D model YAML: {exc}")
    if arena is not None and o.view is not None and o.view != arena.view:
        bad("view", f"the arena calibration's view ({arena.view}), or leave it out")
    elif spec is not None and spec.view != view_of_options(o, arena):
        bad("keypoint_model", f"a 2D model of {view_of_options(o, arena)} views (this one "
            f"was trained on {spec.view} views)")
    if o.depth_model is not None and not Path(o.depth_model).is_file():
        bad("depth_model", "a depth model YAML file (it does not exist)")
    if o.bodyparts is not None:
        parts = list(o.bodyparts)
        names = list(spec.output_names) if spec is not None else []
        unknown = [p for p in parts if names and p not in names]
        if not parts:
            bad("bodyparts", "one or more body part names")
        elif unknown:
            bad("bodyparts", f"{', '.join(unknown)} not among the model's body parts "
                f"{', '.join(names)}")
    if o.colormap is not None:
        from mouse_lifter_ros.core.overlay import colormap_names

        if o.colormap not in colormap_names():
            bad("colormap", "a matplotlib colormap name, e.g. rainbow, viridis, jet, "
                "plasma, cool, autumn")
    if (not {"rest_speed", "move_speed"} & invalid.keys() and o.rest_speed is not None
            and o.move_speed is not None and o.rest_speed > o.move_speed):
        bad("rest_speed", f"at most --move-speed ({o.move_speed!r})")
    if "image_topic" not in invalid:
        problems.extend(_image_topic_problems(movies, o.image_topic))
    if problems:
        raise ParameterError("analyze: invalid options:\n  " + "\n  ".join(problems))
    assert spec is not None
    return movies, arena, spec


# ---------------------------------------------------------------------------- sources


class MovieSource:
    """Frames of one movie: ``(time s since its start, frame)``; ``fps`` (None for a
    bag until read), ``count`` (None if unknown), ``size`` (W, H) once known.
    After iterating, :meth:`problems` says what of the movie could not be read."""

    def __init__(self, movie: Movie, topic: str) -> None:
        from mouse_lifter_ros.core.bag import BagImages
        from mouse_lifter_ros.core.overlay import open_video_file

        self.movie = movie
        self._video = self._bag = None
        self.delivered = 0
        if movie.kind == "video":
            self._video = open_video_file(movie.path)
            self.fps: float | None = float(self._video.fps)
            self.count: int | None = self._video.frame_count
        else:
            self._bag = BagImages(movie.path, topic)
            self.fps, self.count = None, self._bag.count

    def __iter__(self) -> Iterator[tuple[float, U8]]:
        return self.frames()

    def frames(self, start: int = 0, *, seek: bool = True) -> Iterator[tuple[float, U8]]:
        """Frames ``start``, ``start + 1``, ... with their time: a video seeks to ``start``
        (``seek``; else it decodes and drops the frames before it), a bag reads and drops
        them. :attr:`delivered` is the number of the frame being yielded."""
        self.delivered = 0
        if self._video is not None:
            assert self.fps is not None
            if start > 0 and seek:
                self._video.seek(start)
                self.delivered = start
            while (frame := self._video.read()) is not None:
                if self.delivered >= start:
                    yield self.delivered / self.fps, frame
                self.delivered += 1
        else:
            assert self._bag is not None
            first: int | None = None
            for stamp, frame in self._bag:
                first = stamp if first is None else first
                if self.delivered >= start:
                    yield (stamp - first) / 1e9, frame
                self.delivered += 1

    @property
    def position_ms(self) -> float | None:
        """A video's container timestamp of the frame read last, ms (None: a bag)."""
        return None if self._video is None else self._video.position_ms

    def problems(self) -> list[str]:
        """What a complete pass could not read: a video that ends before the frame count
        its header gives (a damaged or truncated file), messages of a bag that could not
        be decoded. Empty for a movie read whole."""
        if self._bag is not None:
            skipped = self._bag.skipped
            return [f"{len(skipped)} of the {self._bag.count} messages on "
                    f"{self._bag.topic} could not be decoded and were skipped: "
                    + "; ".join(skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
                    ] if skipped else []
        # Some containers estimate the count from the duration: a frame or two (1 %) short
        # is not taken for damage.
        if self.count is not None and self.count - self.delivered > max(2, self.count // 100):
            return [f"the video ended after {self.delivered} of the {self.count} frames its "
                    "header gives: the file is damaged or truncated; the frames read are "
                    "analysed"]
        return []

    def close(self) -> None:
        for src in (self._video, self._bag):
            if src is not None:
                src.close()


# ---------------------------------------------------------------------------- the pass


@dataclass
class Track:
    """One movie's poses, frame by frame (T frames, K keypoints).

    Attributes
    ----------
    times:
        (T,) s since the movie's start.
    xy, likelihood:
        (T, K, 2) px of the full frame and (T, K) 0..1: every keypoint (NaN where the
        detector found no mouse).
    found:
        (T,) the detector found the mouse.
    positions, depth:
        (T, K, 3) arena frame, m, and (T, K) camera z, m; None in 2D.
    behavior, behavior_probability:
        (T,) label ("" when none) and its probability (NaN when none); empty in 2D.
    fps, size:
        Frame rate (Hz) and (W, H) px.
    problems:
        What of the movie could not be read (empty when it was read whole).
    """

    times: FloatArray
    xy: FloatArray
    likelihood: FloatArray
    found: NDArray[np.bool_]
    positions: FloatArray | None
    depth: FloatArray | None
    behavior: list[str] = field(default_factory=list)
    behavior_probability: FloatArray = field(default_factory=lambda: np.zeros(0))
    fps: float = 30.0
    size: tuple[int, int] = (0, 0)
    problems: list[str] = field(default_factory=list)


def _bar(total: int | None, desc: str, on: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc=desc, disable=not on, file=sys.stderr,
                leave=False)


#: A frame's seam mark: its container timestamp (ms; None for a bag) and SHA-1 of its pixels.
Seam = tuple[float | None, str]


def _seam(src: MovieSource, frame: U8) -> Seam:
    import hashlib

    return src.position_ms, hashlib.sha1(np.ascontiguousarray(frame).tobytes()).hexdigest()


@dataclass
class Observed:
    """Pass 1 up to the lifter over frames ``first`` .. ``first + T - 1`` of one movie:
    what the networks give each frame (:meth:`~.pipeline.PosePipeline.see`; the only
    state carried from frame to frame is the mouse tracker's, which restarts at every
    key frame). Parts of a movie observed apart, in any
    order and process, then joined in frame order (:func:`track_of`) give exactly what
    one pass over the movie gives.

    Attributes
    ----------
    first:
        The movie's frame number of the first row.
    times:
        (T,) s since the movie's start.
    xy, confidence:
        (T, K, 2) px and (T, K) 0..1, float32: every keypoint before the p-cutoff.
    found:
        (T,) the detector found the mouse.
    readings, depth_found:
        (T, K) m, the depth map over each keypoint after the cut (NaN: no reading),
        and (T,) the depth model found the mouse; None in 2D.
    size, fps:
        (W, H) px of the frames (None: no frame read) and a video's rate, Hz (None: a
        bag, whose rate its stamps give).
    ended, problems:
        The movie ended before the part's stop (or the part had none); what of the
        movie could not be read (only when ``ended``).
    seams:
        :data:`Seam` of the part's first frame and of the frame after its last one (None:
        not read), so that a join can check that parts abut (:func:`seam_problems`).
    """

    first: int
    times: FloatArray
    xy: NDArray[np.float32]
    confidence: NDArray[np.float32]
    found: NDArray[np.bool_]
    readings: FloatArray | None
    depth_found: NDArray[np.bool_] | None
    size: tuple[int, int] | None
    fps: float | None
    ended: bool
    problems: list[str]
    seams: tuple[Seam | None, Seam | None]


def observe(movie: Movie, options: AnalysisOptions, model: KeypointModel,
            pipe: PosePipeline | None, arena: ArenaCalibration | None, *, start: int = 0,
            stop: int | None = None, seek: bool = True, progress: bool = False) -> Observed:
    """Pass 1 up to the lifter over frames ``start`` .. ``stop - 1`` of ``movie`` (``stop``
    None: to its end), see :class:`Observed`. ``seek``: a video seeks to ``start``
    instead of decoding the frames before it. ``pipe`` None: 2D only (``model``).

    The mouse tracker reads the frames from the key frame at or before ``start`` on
    (:func:`~.tracking.key_frame_before`), through the keypoint model as in one pass
    (its checks of the crop move the track), so that any cut of a movie into parts gives
    what one pass gives."""
    src = MovieSource(movie, options.image_topic)
    tracker = (MouseTracker(model.detector, redetect_every=options.redetect_every)
               if model.detector is not None else None)
    first = start if tracker is None else key_frame_before(start, options.redetect_every)
    if tracker is not None:
        tracker.reset(first)
    total = src.count if stop is None else min(src.count or stop, stop)
    bar = _bar(None if total is None else max(0, total - start), f"analyse {movie.stem}",
               progress)
    k = len(model.names)
    times: list[float] = []
    xys: list[NDArray[Any]] = []
    likes: list[NDArray[Any]] = []
    found: list[bool] = []
    readings: list[FloatArray] = []
    depth_found: list[bool] = []
    size: tuple[int, int] | None = None
    first_seam = after = None
    ended = True
    try:
        for t, frame in src.frames(first, seek=seek):
            if src.delivered < start:
                model(frame, tracker=tracker)
                continue
            if stop is not None and src.delivered >= stop:
                ended, after = False, _seam(src, frame)
                break
            if size is None:
                size = (int(frame.shape[1]), int(frame.shape[0]))
                first_seam = _seam(src, frame)
                if pipe is not None and arena is not None:
                    pipe.set_arena(arena.scaled(*size))
            if pipe is not None:
                seen = pipe.see(frame, tracker)
                kp = seen.uncut if seen.uncut is not None else seen.keypoints
                readings.append(seen.readings if seen.depth.found else np.full(k, np.nan))
                depth_found.append(bool(seen.depth.found))
            else:
                kp = model(frame, tracker=tracker)
            times.append(t)
            xys.append(kp.xy)
            likes.append(kp.confidence)
            found.append(kp.detection is None or bool(kp.detection.found))
            bar.update(1)
    finally:
        bar.close()
        src.close()
    return Observed(
        first=start, times=np.asarray(times, np.float64),
        xy=np.asarray(xys, np.float32).reshape(-1, k, 2),
        confidence=np.asarray(likes, np.float32).reshape(-1, k),
        found=np.asarray(found, bool),
        readings=(np.asarray(readings, np.float64).reshape(-1, k) if pipe is not None
                  else None),
        depth_found=np.asarray(depth_found, bool) if pipe is not None else None,
        size=size, fps=src.fps, ended=ended, problems=src.problems() if ended else [],
        seams=(first_seam, after))


def seam_problems(parts: Sequence[Observed]) -> list[str]:
    """Where consecutive ``parts`` of one movie do not abut: a part that starts at
    another frame than the one after the previous part's last (by number, and by the
    frame's timestamp and pixels where both read it), or frames after a part that read
    to the movie's end. Empty when they join into one pass."""
    from itertools import pairwise

    problems: list[str] = []
    for a, b in pairwise(parts):
        end = a.first + len(a.times)
        if a.ended:
            if len(b.times):
                problems.append(f"frames {b.first}..: after the movie ended at frame {end}")
        elif b.first != end:
            problems.append(f"frame {b.first}: follows frame {end - 1}")
        elif len(b.times) and a.seams[1] != b.seams[0]:
            problems.append(f"frame {b.first}: read as another frame by the part before "
                            f"({a.seams[1]} != {b.seams[0]})")
        elif not len(b.times) and a.seams[1] is not None:
            problems.append(f"frame {b.first}: read by the part before, not by its own")
    return problems


def track_of(parts: Sequence[Observed], movie: Movie, options: AnalysisOptions,
             names: Sequence[str], pipe: PosePipeline | None,
             arena: ArenaCalibration | None) -> Track:
    """Pass 1, the rest: join ``parts`` (:class:`Observed`, in frame order, abutting) and
    run what carries state from frame to frame over the whole movie: the lifter and the
    behaviour classifier (``pipe``; None: 2D only), then the median filter."""
    from mouse_lifter_ros.core.behavior import BehaviorClassifier
    from mouse_lifter_ros.core.keypoints import Keypoints
    from mouse_lifter_ros.core.lifter import keypoints_as_named

    k = len(names)
    t_arr = np.concatenate([p.times for p in parts]) if parts else np.zeros(0)
    size = next((p.size for p in parts if p.size is not None), None)
    if not len(t_arr) or size is None:
        raise SourceError(f"{movie.kind} '{movie.path}' delivered no frame")
    xy32 = np.concatenate([p.xy for p in parts])
    conf32 = np.concatenate([p.confidence for p in parts])
    found = np.concatenate([p.found for p in parts])
    problems = next((p.problems for p in parts if p.ended), [])
    positions = depth = None
    labels: list[str] = []
    probs: list[float] = []
    scaled = arena
    if pipe is not None and arena is not None:
        readings = np.concatenate([cast(FloatArray, p.readings) for p in parts])
        has_depth = np.concatenate([cast(NDArray[np.bool_], p.depth_found) for p in parts])
        scaled = arena.scaled(*size)
        pipe.set_arena(scaled)  # a fresh lifter for each movie
        classifier = BehaviorClassifier()
        crop = (math.nan,) * 3
        pos: list[FloatArray] = []
        for i, t in enumerate(t_arr.tolist()):
            kp = Keypoints(xy32[i], conf32[i], tuple(names), None, crop
                           ).with_cutoff(pipe.p_cutoff)
            lifted = pipe.lift(t, kp, readings[i] if has_depth[i] else None)
            if lifted is None:
                pos.append(np.full((k, 3), np.nan))
                labels.append("")
                probs.append(math.nan)
            else:
                pos.append(keypoints_as_named(names, lifted.positions))
                label, classes, p = classifier.update(t, lifted.positions, lifted.valid)
                known = label in classes
                labels.append(label if known else "")
                probs.append(float(p[list(classes).index(label)]) if known else math.nan)
        positions = np.asarray(pos, np.float64)
        positions = np.where(np.isinf(positions), np.nan, positions)
    fps = parts[0].fps
    if fps is None:  # a bag: the rate of its stamps
        span = float(t_arr[-1] - t_arr[0])
        fps = (len(t_arr) - 1) / span if len(t_arr) > 1 and span > 0 else 30.0
    xy, like = xy32.astype(np.float64), conf32.astype(np.float64)
    w = options.median_window
    if w >= 3:
        xy = median_filter(xy, w)
        if positions is not None:
            positions = median_filter(positions, w)
    if positions is not None and scaled is not None:
        flat = positions.reshape(-1, 3)
        z = np.full(len(flat), np.nan)
        ok = np.isfinite(flat).all(axis=1)
        if ok.any():
            z[ok] = scaled.project(flat[ok])[1]
        depth = z.reshape(positions.shape[:2])
    return Track(times=t_arr, xy=np.where(np.isinf(xy), np.nan, xy),
                 likelihood=np.clip(np.nan_to_num(like, nan=0.0), 0.0, 1.0),
                 found=found, positions=positions, depth=depth,
                 behavior=labels if pipe is not None else [],
                 behavior_probability=np.asarray(probs, np.float64),
                 fps=float(fps), size=size, problems=problems)


def _track(movie: Movie, options: AnalysisOptions, model: KeypointModel,
           pipe: PosePipeline | None, arena: ArenaCalibration | None) -> Track:
    """Pass 1: run the models over every frame of ``movie`` (up to ``max_frames``)."""
    seen = observe(movie, options, model, pipe, arena, stop=options.max_frames,
                   progress=options.progress)
    return track_of([seen], movie, options, model.names, pipe, arena)


# ---------------------------------------------------------------------------- outputs


def _write_dlc(stem: Path, track: Track, names: Sequence[str], scorer: str) -> None:
    from mouse_lifter_ros.core.pose_files import DlcWriter, FrameRecord

    with DlcWriter(stem, names, scorer=scorer, checkpoint_every=0, overwrite=True) as w:
        for i, t in enumerate(track.times.tolist()):
            w.write(FrameRecord(frame=i, time_s=t, keypoints_2d=track.xy[i],
                                likelihood=track.likelihood[i]))


def annotate(writer: AnnotationsWriter, track: Track, movie: int, first_frame: int,
             offset_s: float) -> None:
    """Append one movie's rows to the annotations table: movie number ``movie``, frame
    numbers from ``first_frame``, times ``offset_s`` seconds after the first movie's start."""
    from mouse_lifter_ros.core.pose_files import FrameRecord

    for i, t in enumerate(track.times.tolist()):
        has_3d = track.positions is not None
        writer.write(FrameRecord(
            frame=first_frame + i, time_s=offset_s + t, keypoints_2d=track.xy[i],
            likelihood=track.likelihood[i],
            keypoints_3d=track.positions[i] if track.positions is not None else None,
            depth=track.depth[i] if track.depth is not None else None,
            behavior=track.behavior[i] if has_3d else "",
            behavior_probability=float(track.behavior_probability[i]) if has_3d else math.nan,
            movie=movie, local_frame=i))


def _locomotion(track: Track, names: Sequence[str],
                options: AnalysisOptions) -> tuple[Locomotion, str]:
    """Locomotion in metres (3D) or pixels (2D) and how the threshold was chosen."""
    usable = track.likelihood >= options.p_cutoff
    if track.positions is not None:
        centre = centre_of_mass(track.positions[:, :, :2], names=names)
        unit = "m"
        move = options.move_speed if options.move_speed is not None else MOVE_SPEED_M_S
        rule = "--move-speed" if options.move_speed is not None else \
            f"default {MOVE_SPEED_M_S:g} m/s"
    else:
        centre = centre_of_mass(track.xy, usable, names)
        unit = "px"
        length = body_length(track.xy, names, usable)
        if options.move_speed is not None:
            move, rule = options.move_speed, "--move-speed"
        elif math.isfinite(length) and length > 0:
            move = MOVE_SPEED_BODY_LENGTHS * length
            rule = (f"default {MOVE_SPEED_BODY_LENGTHS:g} body lengths/s (median nose to "
                    f"tail base {length:.1f} px)")
        else:
            move = FALLBACK_MOVE_SPEED_PX
            rule = f"{FALLBACK_MOVE_SPEED_PX:g} px/s (no body length could be measured)"
    loco = locomotion(centre, track.times, unit=unit, move_speed=move,
                      rest_speed=options.rest_speed, min_bout_s=options.min_bout_s,
                      window_s=options.speed_window_s)
    return loco, rule


def _write_locomotion(path_csv: Path, path_json: Path, loco: Locomotion,
                      extra: dict[str, Any]) -> None:
    import pandas as pd

    u = loco.unit
    table = pd.DataFrame({
        "Frame number": np.arange(len(loco.times), dtype=np.int64),
        "Time since start (s)": loco.times,
        f"Centre x ({u})": loco.centre[:, 0],
        f"Centre y ({u})": loco.centre[:, 1],
        f"Speed ({u}/s)": loco.speed,
        "State": [STATE_NAMES[int(s)] for s in loco.states],
    })
    table.to_csv(path_csv, index=False)
    path_json.write_text(json.dumps({**loco.summary, **extra}, indent=2) + "\n",
                         encoding="utf-8")


def _plots(out: Path, stem: str, track: Track, names: Sequence[str],
           colours: Sequence[tuple[int, int, int]], p_cutoff: float) -> dict[str, str]:
    from mouse_lifter_ros.core import plots

    rgb = plots.rgb_colours(colours)
    title = f"{stem}: "
    centre_px = centre_of_mass(track.xy, track.likelihood >= p_cutoff, names)
    files = {
        "jumps": plots.plot_jumps(out / f"{stem}_jumps.png", track.xy, track.likelihood,
                                  names, rgb, p_cutoff=p_cutoff, title=title),
        "likelihood": plots.plot_likelihood(out / f"{stem}_likelihood.png",
                                            track.likelihood, track.times, names, rgb,
                                            p_cutoff=p_cutoff, title=title),
        "coordinates": plots.plot_coordinates(out / f"{stem}_coordinates.png", track.xy,
                                              track.likelihood, track.times, names, rgb,
                                              p_cutoff=p_cutoff, frame_size=track.size,
                                              title=title),
        "trajectory": plots.plot_trajectory(out / f"{stem}_trajectory.png", track.xy,
                                            track.likelihood, names, rgb, p_cutoff=p_cutoff,
                                            frame_size=track.size, centre=centre_px,
                                            title=title),
    }
    return {k: str(v) for k, v in files.items()}


def _label(movie: Movie, path: Path, track: Track, loco: Locomotion, model: KeypointModel,
           options: AnalysisOptions) -> None:
    """Pass 2: draw the (filtered) poses on the movie's frames again."""
    from mouse_lifter_ros.core.overlay import Labeller, open_video_writer

    labeller = Labeller(model.names, model.spec.skeleton, options.label_style(),
                        model.spec.keypoints)
    fps = options.output_fps or track.fps
    n = len(track.times)
    writer = open_video_writer(path, fps, track.size)
    src = MovieSource(movie, options.image_topic)
    bar = _bar(n, f"label {movie.stem}", options.progress)
    try:
        for i, (_, frame) in enumerate(src):
            if i >= n:
                break
            if (frame.shape[1], frame.shape[0]) != track.size:
                raise SourceError(f"{movie.kind} '{movie.path}': frame {i} is "
                                  f"{frame.shape[1]}x{frame.shape[0]}, the first was "
                                  f"{track.size[0]}x{track.size[1]}")
            line = f"frame {i}  {track.times[i]:.2f} s  {STATE_NAMES[int(loco.states[i])]}"
            if track.behavior and track.behavior[i]:
                p = track.behavior_probability[i]
                line += f"  {track.behavior[i]} {p:.2f}"
            if not track.found[i]:
                line += "  no mouse"
            writer.write(labeller.draw(frame, track.xy[i], track.likelihood[i], [line]))
            bar.update(1)
    finally:
        bar.close()
        src.close()
        writer.release()


def movie_outputs(out: Path, movie: Movie, track: Track, model: KeypointModel,
                  options: AnalysisOptions) -> dict[str, Any]:
    """Write ``movie``'s files (module docstring) from its ``track`` into ``out``; return
    its entry of :func:`analyze`'s ``movies``, less ``movie`` (its number)."""
    from mouse_lifter_ros.core.overlay import colormap_colours

    names = list(model.names)
    stem = movie.stem
    _write_dlc(out / stem, track, names, model.spec.name)
    loco, rule = _locomotion(track, names, options)
    loco_csv, loco_json = out / f"{stem}_locomotion.csv", out / f"{stem}_locomotion.json"
    _write_locomotion(loco_csv, loco_json, loco,
                      {"move_speed_rule": rule, "movie": str(movie.path),
                       "centre_of_mass": "mean of the usable trunk keypoints "
                       "(neck, spine_center, lumbar_spine, tail_base)"})
    colours = colormap_colours(len(names), options.colormap)
    pngs = _plots(out, stem, track, names, colours, options.p_cutoff)
    labelled = out / f"{stem}_labelled.mp4"
    _label(movie, labelled, track, loco, model, options)
    seen = track.found
    counts: dict[str, int] = {}
    for label in track.behavior:
        if label:
            counts[label] = counts.get(label, 0) + 1
    return {
        "input": str(movie.path),
        "kind": movie.kind,
        "frames": len(track.times),
        "problems": track.problems,
        "fps": round(track.fps, 4),
        "width": track.size[0],
        "height": track.size[1],
        "mode": "3d" if track.positions is not None else "2d",
        "frames_with_mouse": int(seen.sum()),
        "mean_likelihood": (round(float(track.likelihood[seen].mean()), 4)
                            if seen.any() else None),
        "behavior_frames": counts if track.positions is not None else None,
        "locomotion": {**loco.summary, "move_speed_rule": rule},
        "files": {"h5": str(out / f"{stem}.h5"), "csv": str(out / f"{stem}.csv"),
                  "labelled_video": str(labelled), **pngs,
                  "locomotion_csv": str(loco_csv),
                  "locomotion_json": str(loco_json)},
    }


def view_of_options(options: AnalysisOptions, arena: ArenaCalibration | None) -> str:
    """The camera's view: ``--view``, else the arena calibration's, else top."""
    return options.view or (arena.view if arena is not None else "top")


def model_spec(options: AnalysisOptions, arena: ArenaCalibration | None) -> ModelSpec:
    """The 2D model's description: ``--model``, else the shipped model of the view."""
    from mouse_lifter_ros.core.keypoints import load_model_spec

    return load_model_spec(None if options.keypoint_model is None
                           else Path(options.keypoint_model),
                           view=view_of_options(options, arena))


def load_models(spec: ModelSpec, arena: ArenaCalibration | None, options: AnalysisOptions
                ) -> tuple[KeypointModel, PosePipeline | None]:
    """The 2D model and, with an arena, the whole core (whose 2D model it is)."""
    from mouse_lifter_ros.core.keypoints import KeypointModel
    from mouse_lifter_ros.core.pipeline import PosePipeline

    if arena is None:
        return KeypointModel(spec, device=options.device, threads=options.threads), None
    depth = None if options.depth_model is None else Path(options.depth_model)
    pipe = PosePipeline(arena, keypoint_model=spec, depth_model=depth, device=options.device,
                        threads=options.threads, p_cutoff=options.p_cutoff)
    return pipe.keypoints, pipe


def _stderr(message: str) -> None:
    print(f"mouse-lifter analyze: {message}", file=sys.stderr)


def analyze(inputs: Sequence[str | os.PathLike[str]], options: AnalysisOptions, *,
            notice: Callable[[str], None] = _stderr) -> dict[str, Any]:
    """Analyse every movie of ``inputs`` (module docstring); return the JSON summary.

    Parameters
    ----------
    inputs:
        ``.mp4``/``.avi`` files and rosbag2 folders, in movie-number order.
    options:
        What to do (:class:`AnalysisOptions`).
    notice:
        Called with a line for the user: once when running 2D only (no arena), and for
        each problem of a movie that could not be read whole.

    Returns
    -------
    dict
        ``movies`` (one entry per input: its files, frames, fps, size, mode, frames with
        the mouse, mean likelihood, behaviour frame counts, the locomotion summary and
        ``problems``: what of it could not be read, e.g. a truncated video, whose frames
        read are still analysed and written),
        ``annotations`` (the table's path), ``mode`` (``3d`` or ``2d``), ``model``,
        ``p_cutoff``, ``median_window``, ``seconds`` (wall time).

    Raises
    ------
    ParameterError
        Every invalid option at once, before anything runs.
    SourceError, MouseLifterError
        A movie that cannot be read; models that cannot be loaded.
    """

    start = time.monotonic()
    movies, arena, spec = check_options(inputs, options)
    out = Path(options.out)
    model, pipe = load_models(spec, arena, options)
    if pipe is None:
        notice("no --arena: 2D only. The 3D columns (z, X, Y, Z in metres) of the "
               "annotations stay empty, no behaviour is classified, and locomotion is in "
               "pixels. Give the camera's arena calibration (mouse-lifter calibrate) for 3D.")
    names = list(model.names)
    out.mkdir(parents=True, exist_ok=True)
    table = out / f"annotations.{options.fmt}"
    results: list[dict[str, Any]] = []
    frame0, offset = 0, 0.0
    fmt = cast("AnnotationsFormat", options.fmt)
    with AnnotationsWriter(table, names, fmt=fmt, checkpoint_every=0,
                           overwrite=True) as annotations:
        for index, movie in enumerate(movies):
            track = _track(movie, options, model, pipe, arena)
            annotate(annotations, track, index, frame0, offset)
            results.append({"movie": index, **movie_outputs(out, movie, track, model,
                                                            options)})
            frame0 += len(track.times)
            offset += len(track.times) / track.fps
            for problem in track.problems:
                notice(f"{movie.path}: {problem}")
    return summary(results, table, arena, model.description, options, start)


def summary(movies: list[dict[str, Any]], table: Path, arena: ArenaCalibration | None,
            model: str, options: AnalysisOptions, start: float) -> dict[str, Any]:
    """:func:`analyze`'s summary of ``movies`` (their entries) and ``table`` (the
    annotations) by ``model`` (in 3D over ``arena``), begun at ``start``
    (``time.monotonic()``). ``surface_height_m``: the z = 0 of the 3D columns over the
    calibrated floor (the bedding's depth the calibration gives; null in 2D)."""
    return {
        "movies": movies,
        "annotations": str(table),
        "mode": "3d" if arena is not None else "2d",
        "surface_height_m": arena.bedding if arena is not None else None,
        "model": model,
        "p_cutoff": options.p_cutoff,
        "median_window": options.median_window,
        "seconds": round(time.monotonic() - start, 2),
    }

