"""The whole image-to-3D core in one process: what the keypoint, depth and lifter nodes
do over ROS, for offline analysis and evaluation.

One detector finds the mouse once per frame (a :class:`~.tracking.MouseTracker` follows it
from frame to frame) and both networks crop around it; the lifter pairs nothing (both
results belong to the same frame by construction).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.arena import ArenaCalibration
from mouse_lifter_ros.core.bodyfit import SPINE_SCALE_PAIRS
from mouse_lifter_ros.core.depth import DepthMap, DepthModel, DepthSpec
from mouse_lifter_ros.core.keypoints import (
    P_CUTOFF,
    KeypointModel,
    Keypoints,
    ModelSpec,
    check_model_view,
)
from mouse_lifter_ros.core.lifter import (
    Lifted,
    Lifter,
    keypoints_by_name,
    sample_depth,
)
from mouse_lifter_ros.core.tracking import REDETECT_EVERY, MouseTracker


@dataclass(frozen=True)
class Frame3D:
    """One frame through the core: 2D keypoints (confidence cut applied), the depth map,
    the depth map's reading over each keypoint (14,) m (its surface, see
    :func:`~.lifter.keypoint_depth`), the lifted pose (None: no mouse), and the 2D
    keypoints before the cut (every keypoint with its confidence, as DeepLabCut files
    hold them; None when not kept)."""

    keypoints: Keypoints
    depth: DepthMap
    readings: NDArray[np.float64]
    lifted: Lifted | None
    uncut: Keypoints | None = None


class PosePipeline:
    """Frame -> :class:`Frame3D`, with the nodes' defaults.

    Parameters
    ----------
    arena:
        The calibration of the camera the frames come from.
    keypoint_model, depth_model:
        Model YAML paths or loaded specs (None: the shipped models).
    p_cutoff:
        As the keypoint node's: keypoints below it are NaN (and filled by the lifter).
    lifter:
        Keyword arguments of :class:`~mouse_lifter_ros.core.lifter.Lifter`.
    redetect_every:
        The tracker's key frame period (:class:`~.tracking.MouseTracker`) that
        :meth:`__call__` uses; 1: every frame on its own.
    """

    def __init__(self, arena: ArenaCalibration, *,
                 keypoint_model: str | Path | ModelSpec | None = None,
                 depth_model: str | Path | DepthSpec | None = None, device: str = "auto",
                 threads: int = 0, p_cutoff: float = P_CUTOFF,
                 lifter: dict[str, Any] | None = None,
                 redetect_every: int = REDETECT_EVERY) -> None:
        self.keypoints = KeypointModel(keypoint_model, device=device, threads=threads,
                                       view=arena.view)
        check_model_view(self.keypoints.spec, arena.view)
        self.redetect_every = redetect_every
        self.tracker = self.new_tracker()
        self.depth = DepthModel(depth_model, arena=arena, device=device, threads=threads,
                                detector=self.keypoints.detector)
        self.p_cutoff = p_cutoff
        self._lifter_args = {"p_cutoff": p_cutoff, "scale_pairs": SPINE_SCALE_PAIRS,
                             **(lifter or {})}
        self.lifter = Lifter(arena.camera, **self._lifter_args)

    def new_tracker(self) -> MouseTracker | None:
        """A tracker of this pipeline's detector for a video read in order (None: the
        keypoint model has no detector)."""
        det = self.keypoints.detector
        return MouseTracker(det, redetect_every=self.redetect_every) if det else None

    def set_arena(self, arena: ArenaCalibration) -> None:
        """Another camera (or animal): the models stay, the lifter and the tracker start
        afresh."""
        check_model_view(self.keypoints.spec, arena.view)
        self.depth.arena = arena
        self.lifter = Lifter(arena.camera, **self._lifter_args)
        self.tracker = self.new_tracker()

    def __call__(self, frame: NDArray[np.uint8], stamp_s: float) -> Frame3D:
        """Run one frame (H, W) grey or (H, W, 3) BGR uint8 taken at ``stamp_s`` seconds,
        the next of a video (the pipeline's tracker follows the mouse)."""
        seen = self.see(frame, self.tracker)
        return replace(seen, lifted=self.lift(stamp_s, seen.keypoints,
                                              seen.readings if seen.depth.found else None))

    def see(self, frame: NDArray[np.uint8], tracker: MouseTracker | None = None) -> Frame3D:
        """The networks' half of :meth:`__call__` (``lifted`` None): it keeps no state
        from frame to frame, so frames may go through it in any order, in any process.
        ``tracker`` (:meth:`new_tracker`, the caller's, given the frames of one video in
        order) finds the mouse; None: the detector on this frame alone."""
        uncut = self.keypoints(frame, tracker=tracker)
        kp = uncut.with_cutoff(self.p_cutoff)
        depth = self.depth(frame, kp.detection)
        if not depth.found:
            return Frame3D(kp, depth, np.full(len(kp.xy), np.nan), None, uncut)
        readings = sample_depth(depth.depth, depth.roi[:2], kp.xy.astype(np.float64))
        return Frame3D(kp, depth, readings, None, uncut)

    def lift(self, stamp_s: float, keypoints: Keypoints,
             readings: NDArray[np.float64] | None) -> Lifted | None:
        """The lifter's half of :meth:`__call__`, which carries state from frame to frame
        (call it in frame order): ``keypoints`` after the cut, ``readings`` (K,) m of the
        depth map (None: the depth model found no mouse, and no pose is lifted)."""
        if readings is None:
            return None
        # the lifter takes our 14 keypoints by name: a model's own extra ones (a lab's
        # point added by finetune) are left out, ours it lacks have no reading (0)
        px = keypoints.xy.astype(np.float64)
        xy, conf = keypoints_by_name(keypoints.names, px,
                                     keypoints.confidence.astype(np.float64))
        _, depth = keypoints_by_name(keypoints.names, px, readings)
        return self.lifter.lift(stamp_s, xy, conf, self.lifter.keypoint_depth(depth))
