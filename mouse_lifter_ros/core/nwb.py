"""One movie's poses as Neurodata Without Borders (NWB), the format DANDI takes.

:func:`write_nwb` writes, with pynwb and the ``ndx-pose`` extension:

- ``processing/behavior/PoseEstimation2D``: an ``ndx_pose.PoseEstimation`` with one
  ``PoseEstimationSeries`` per keypoint, (T, 2) pixels of the full frame ((0, 0) the top
  left pixel's centre, x right, y down; NaN where the detector found no mouse) with the
  likelihood as its confidence (0..1), every keypoint whatever the p-cutoff, as the
  DeepLabCut files hold them;
- with an arena calibration, ``PoseEstimation3D``: one series per keypoint, (T, 3)
  metres in the arena frame (x, y on the floor, z up, origin on the floor at the arena's
  centre), confidence the 2D likelihood;
- ``processing/behavior/Skeletons``: the model's keypoints and skeleton edges;
- the camera as a device: with an arena, an ``ndx_pose.CalibratedCamera`` holding the
  intrinsic matrix, the distortion coefficients and the rotation and translation from
  the arena frame to the camera (``x_cam = R @ x_arena + t``, metres); the arena's size,
  the calibration method and its reprojection error in its description;
- ``acquisition/source_video``: an external-file ``ImageSeries`` pointing at the movie
  (relative to the NWB file's folder), which both pose estimations link to;
- ``intervals/behavior``: the behaviour bouts (3D only): start and stop time, label and
  the label's mean probability over the bout.

Times are seconds since the movie's first frame; the session starts at the movie file's
modification time (UTC) unless one is given.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError

if TYPE_CHECKING:
    from mouse_lifter_ros.core.analysis import Track
    from mouse_lifter_ros.core.arena import ArenaCalibration

PX_FRAME: Final = ("pixels of the full video frame: (0, 0) is the centre of the top-left "
                   "pixel, x to the right, y down")
ARENA_FRAME: Final = ("arena frame (REP-103), metres: x and y on the floor, z up away from "
                      "it, origin on the floor at the arena's centre")
CONFIDENCE: Final = ("likelihood 0..1 of the 2D keypoint as the network gives it (its "
                     "heatmap peak); DeepLabCut's likelihood")


def package_version() -> str:
    """This package's installed version ("unknown" when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mouse_lifter_ros")
    except PackageNotFoundError:
        return "unknown"


def behavior_bouts(labels: Sequence[str], probability: NDArray[np.float64],
                   times: NDArray[np.float64], fps: float
                   ) -> list[tuple[float, float, str, float]]:
    """Runs of one label in per-frame ``labels`` ("" none): (start s, stop s, label,
    mean probability). A bout stops one frame period (1 / ``fps``) after its last frame."""
    bouts: list[tuple[float, float, str, float]] = []
    i, n = 0, len(labels)
    while i < n:
        j = i
        while j + 1 < n and labels[j + 1] == labels[i]:
            j += 1
        if labels[i]:
            p = probability[i:j + 1]
            mean = float(np.nanmean(p)) if np.isfinite(p).any() else math.nan
            bouts.append((float(times[i]), float(times[j]) + 1.0 / fps, labels[i], mean))
        i = j + 1
    return bouts


def _timing(times: NDArray[np.float64], fps: float) -> dict[str, Any]:
    """``rate`` for frames at exactly i / fps (a video), else ``timestamps`` (a bag)."""
    regular = np.array_equal(times, np.arange(len(times)) / fps)
    return {"rate": float(fps), "starting_time": 0.0} if regular else {"timestamps": times}


def _camera(arena: ArenaCalibration | None) -> Any:
    from ndx_pose import CalibratedCamera
    from pynwb.device import Device

    if arena is None:
        return Device(name="camera", description="the camera that filmed the movie; "
                      "uncalibrated (2D analysis)")
    size = "unknown" if arena.arena_size is None else \
        f"{arena.arena_size[0]:g} x {arena.arena_size[1]:g} m"
    k = arena.intrinsics
    return CalibratedCamera(
        name="camera", intrinsic_matrix=np.asarray(k.k, np.float64).reshape(3, 3),
        distortion_coefficients=np.asarray(k.d, np.float64).ravel(),
        rotation_matrix=np.asarray(arena.camera.R, np.float64),
        translation_vector=np.asarray(arena.camera.t, np.float64),
        description=f"camera {k.camera_name!r}, {k.width} x {k.height} px, "
        f"{k.distortion_model} distortion, posed over the arena (x_cam = R @ x_arena + t, "
        f"metres; z = 0 the surface the mouse stands on, {arena.bedding * 1000:g} mm of "
        f"bedding over the calibrated floor); arena {size}; calibrated by {arena.method}, "
        f"reprojection error {arena.reprojection_error:.3g} px")


def write_nwb(path: str | os.PathLike[str], *, track: Track, names: Sequence[str],
              skeleton: Sequence[tuple[str, str]], video: str | os.PathLike[str],
              scorer: str, arena: ArenaCalibration | None = None,
              video_relative_to: str | os.PathLike[str] | None = None,
              session_start: datetime | None = None, identifier: str | None = None,
              subject: Mapping[str, Any] | None = None) -> Path:
    """Write ``track`` (one movie, T frames, K = ``len(names)`` keypoints) to ``path``.

    Parameters
    ----------
    track:
        The movie's :class:`~.analysis.Track` (2D; 3D and behaviour when it has them).
    names, skeleton:
        The K keypoint names and the skeleton's edges as name pairs (edges naming an
        unknown keypoint are left out).
    video:
        The movie; the NWB file refers to it by its path relative to
        ``video_relative_to`` (default: the NWB file's folder).
    scorer:
        The model that made the keypoints (name and what ran it).
    arena:
        The camera's arena calibration, at the movie's frame size (None: 2D only).
    session_start, identifier:
        Default: the movie's modification time (UTC) and a random UUID.
    subject:
        ``pynwb.file.Subject`` fields over the defaults, which say only what the
        video shows: ``subject_id`` the movie's stem, ``species`` Mus musculus, ``sex``
        U (unknown), ``age`` P0D/ (unknown: zero days or older). Give what the lab
        knows (``age``, ``sex``, ``strain``, ``genotype``...) before sharing on DANDI.

    Returns
    -------
    Path
        ``path``, replaced if it existed.

    Raises
    ------
    InputError
        ``track`` and ``names`` disagree on K, or ``path`` does not end in ``.nwb``.
    """
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.epoch import TimeIntervals
    from pynwb.file import Subject
    from pynwb.image import ImageSeries

    out = Path(path)
    video = Path(video)
    k = len(names)
    problems = []
    if out.suffix != ".nwb":
        problems.append(f"NWB file '{out}': the name must end in .nwb")
    if track.xy.shape[1:] != (k, 2):
        problems.append(f"track: keypoints {track.xy.shape} for {k} names {list(names)}")
    if problems:
        raise InputError("; ".join(problems))
    release = package_version()
    start = session_start or datetime.fromtimestamp(video.stat().st_mtime, tz=UTC)
    nwbfile = NWBFile(
        session_description=f"Mouse pose estimated from the video {video.name} by "
        f"mouse_lifter_ros {release} ({scorer})",
        identifier=identifier or str(uuid.uuid4()), session_start_time=start,
        source_script=f"mouse_lifter_ros {release}", source_script_file_name="nwb.py",
        subject=Subject(**{"subject_id": video.stem, "species": "Mus musculus", "sex": "U",
                           "age": "P0D/", "description": f"the mouse filmed in {video.name}",
                           **(subject or {})}))
    camera = _camera(arena)
    nwbfile.add_device(camera)
    where = Path(video_relative_to) if video_relative_to is not None else out.parent
    source = ImageSeries(
        name="source_video", description=f"the analysed movie {video.name}",
        external_file=[os.path.relpath(video.resolve(), where.resolve())],
        format="external", starting_frame=[0], num_samples=len(track.times), unit="n.a.",
        device=camera,
        **_timing(track.times, track.fps))
    nwbfile.add_acquisition(source)
    behavior = nwbfile.create_processing_module(
        name="behavior", description="pose estimation by mouse_lifter_ros: 2D keypoints"
        + (", 3D keypoints and behaviour" if track.positions is not None else ""))
    index = {n: i for i, n in enumerate(names)}
    edges = np.array([[index[a], index[b]] for a, b in skeleton if a in index and b in index],
                     dtype=np.uint8).reshape(-1, 2)
    body = Skeleton(name="mouse", nodes=list(names), edges=edges)
    behavior.add(Skeletons(skeletons=[body]))
    timing = _timing(track.times, track.fps)
    series = [PoseEstimationSeries(
        name=name, description=f"{name}, 2D", data=track.xy[:, i], unit="pixels",
        reference_frame=PX_FRAME, confidence=track.likelihood[:, i],
        confidence_definition=CONFIDENCE, **timing) for i, name in enumerate(names)]
    common = {"scorer": scorer, "source_software": "mouse_lifter_ros",
              "source_software_version": release, "skeleton": body, "device": camera,
              "source_video": source}
    behavior.add(PoseEstimation(
        name="PoseEstimation2D", pose_estimation_series=series,
        description="2D keypoints in pixels, every keypoint with its likelihood", **common))
    if track.positions is not None:
        series3 = [PoseEstimationSeries(
            name=name, description=f"{name}, 3D (lifted)", data=track.positions[:, i],
            unit="meters", reference_frame=ARENA_FRAME, confidence=track.likelihood[:, i],
            confidence_definition=CONFIDENCE, **timing) for i, name in enumerate(names)]
        behavior.add(PoseEstimation(
            name="PoseEstimation3D", pose_estimation_series=series3,
            description="3D keypoints in metres in the arena frame, lifted from the 2D "
            "keypoints and the monocular depth with the arena calibration", **common))
        bouts = TimeIntervals(name="behavior", description="behaviour bouts: runs of "
                              "frames with one label of the behaviour classifier")
        bouts.add_column(name="label", description="behaviour label")
        bouts.add_column(name="mean_probability",
                         description="the label's mean probability over the bout, 0..1")
        for begin, end, label, p in behavior_bouts(track.behavior,
                                                   track.behavior_probability,
                                                   track.times, track.fps):
            bouts.add_row(start_time=begin, stop_time=end, label=label, mean_probability=p)
        nwbfile.add_time_intervals(bouts)
    out.unlink(missing_ok=True)
    with NWBHDF5IO(str(out), mode="w") as io:
        io.write(nwbfile)
    return out
