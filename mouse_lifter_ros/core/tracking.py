"""Follow the one mouse through a video, so that a distractor elsewhere does not take it.

A frame on its own is all the detector has on a still image; in a video the mouse is
where it just was. :class:`MouseTracker` searches a square window around the last
detection (:data:`~.keypoints.WINDOW_SIZES` mouse sizes wide, resampled to the
detector's input, so a small mouse is also seen larger than in the whole frame
letterboxed) and takes only a mouse within :data:`STEP_SIZES` of where it was, with the
detector network that found it (a track the second network found is also checked by the
verifier in each window: alone, that network takes a blank window for a mouse). It runs
the detector on the whole frame when

- there is no track yet, or the window lost the mouse (it answers on that same frame,
  with :meth:`~.keypoints.Detector.locate`'s second look);
- the frame is a *key frame*: its number is a multiple of ``redetect_every``. There the
  track starts afresh from the whole frame, so a track that followed something else
  ends within ``redetect_every`` frames, and what the tracker answers for a frame
  depends only on the frames since the key frame before it: a video cut into parts that
  start anywhere gives the same answers as one pass, when each part first feeds the
  frames from its key frame on (:func:`key_frame_before`) as one pass does: through the
  keypoint model, whose checks of the crop lose, widen, settle and scan the track.

A whole-frame answer is *contested* when another answer farther than :data:`STEP_SIZES`
from it scores nearly as well (:data:`RIVAL_SHARE`), whether or not that one reached the
verifier's bar on its own (a small pale mouse seen from below beside a dark tube did
not): a still cup can tie with a mouse on one frame, and a track started on the cup
would hold it until the next key frame. Then each frame is looked at whole, and every
contender gathers the scores of the answers near it; the frame's answer is the leading
contender's, until one leads by :data:`CONTEST_MARGIN` (its track then goes on in the
window) or the next key frame starts afresh. A mouse changes its look from frame to
frame and a cup does not, so a tie seldom lasts.

Where the whole frame holds no mouse either (a small or faint mouse leaves the
letterbox no peak), the keypoint model searches the frame window by window
(:meth:`~.keypoints.Detector.scan`) on the frames :meth:`MouseTracker.may_scan` allows,
one in ``scan_every`` (:data:`SCAN_EVERY`), and the track follows a mouse found so.

Frame numbers count from 0 at the start of the video (or of the stream, in a node).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.core.keypoints import MIN_WINDOW, WINDOW_SIZES, Detection, Detector

#: The farthest the mouse's centre may move from one frame to the next, in mouse sizes: a
#: mouse-like thing farther than that from the track is not taken for it (a mouse running
#: at 1 m/s moves about a third of its size per frame at 30 fps).
STEP_SIZES: Final = 1.0
#: Weight of a frame's own window answer against the track's last (centre and size).
SMOOTHING: Final = 0.5
#: Every this many frames the detector looks at the whole frame and the track restarts.
REDETECT_EVERY: Final = 30
#: Another answer farther than STEP_SIZES with at least this share of the best one's
#: confidence contests it.
RIVAL_SHARE: Final = 0.85
#: A contest ends when the leader's summed confidence is this much above every other's.
CONTEST_MARGIN: Final = 0.5
#: While the whole frame holds no mouse, the keypoint model's window scan
#: (:meth:`~.keypoints.Detector.scan`, about 30 ms on a 640 x 480 frame on a 2-core
#: CPU) runs on the frames whose number is a multiple of this (``scan_every``; the live
#: keypoint node's default is larger): a lost mouse is found again within that many
#: frames, and a camera is not held up on every frame.
SCAN_EVERY: Final = 3


def key_frame_before(frame: int, redetect_every: int = REDETECT_EVERY) -> int:
    """The key frame at or before frame number ``frame``: where a tracker reading a
    video from ``frame`` on starts, to answer as one pass over the video would."""
    return frame - frame % max(1, redetect_every)


@dataclass
class TrackCounts:
    """What a :class:`MouseTracker` did: ``frames`` seen, ``in_window`` found in the
    search window, ``whole_frame`` detections on the whole frame (first frame, key
    frames, losses), ``lost`` times the window did not hold the mouse, ``contested``
    frames answered by a contest between mouse-like answers, ``scanned`` frames searched
    window by window (:meth:`MouseTracker.may_scan`)."""

    frames: int = 0
    in_window: int = 0
    whole_frame: int = 0
    lost: int = 0
    contested: int = 0
    scanned: int = 0


@dataclass
class _Contender:
    """One place a contested answer may be: its last answer and summed confidence."""

    last: Detection
    evidence: float


class MouseTracker:
    """Where the mouse is in each frame of a video, given in order.

    >>> tracker = MouseTracker(model.detector)                     # doctest: +SKIP
    >>> kp = model(frame, tracker=tracker)                         # doctest: +SKIP

    ``search``: window side in mouse sizes (>= 1.5); ``redetect_every``: key frame
    period in frames (>= 1; 1 detects on every whole frame, as without a tracker);
    ``scan_every``: the window scan's period while the mouse is lost, in frames (>= 0;
    0: never, :meth:`may_scan`).
    """

    def __init__(self, detector: Detector, *, search: float = WINDOW_SIZES,
                 redetect_every: int = REDETECT_EVERY, scan_every: int = SCAN_EVERY) -> None:
        problems = []
        if not (np.isfinite(search) and search >= 1.5):
            problems.append(f"search={search!r}: a number >= 1.5 (mouse sizes)")
        if not (isinstance(redetect_every, int) and redetect_every >= 1):
            problems.append(f"redetect_every={redetect_every!r}: an integer >= 1 (frames)")
        if not (isinstance(scan_every, int) and scan_every >= 0):
            problems.append(f"scan_every={scan_every!r}: an integer >= 0 (frames; 0: never)")
        if problems:
            raise ParameterError("tracker: " + "; ".join(problems))
        self.detector = detector
        self.search = float(search)
        self.redetect_every = redetect_every
        self.scan_every = scan_every
        self.counts = TrackCounts()
        self._next = 0
        self._last: Detection | None = None
        self._size = 0.0  # the last whole-frame detection's: the window's scale
        self._contest: list[_Contender] = []
        #: This frame's answer and the other contenders seen in it, while a contest is
        #: open (:meth:`settle`); empty otherwise.
        self.contenders: list[Detection] = []

    def reset(self, frame: int = 0) -> None:
        """Forget the track; the next frame given is number ``frame``."""
        self._next = frame
        self._last = None
        self._contest = []
        self.contenders = []

    def widen(self, size: float) -> None:
        """The keypoints found a mouse ``size`` px large where the detector saw a smaller
        one (:data:`~.keypoints.WIDER`): the window and the crops use that size until
        the next whole-frame detection."""
        self._size = max(self._size, size)
        if self._last is not None and size > self._last.size:
            self._last = replace(self._last, size=size)

    def may_scan(self) -> bool:
        """Whether the keypoint model may scan this frame (the last one given) window by
        window, the whole frame having found no mouse: on frames whose number is a
        multiple of ``scan_every`` (never where it is 0), so that the answers stay those
        of one pass (see the module's notes), where the detector scans at all. A mouse
        found so is followed (:meth:`settle`)."""
        every = self.scan_every
        if not self.detector.scans or not every or (self._next - 1) % every:
            return False
        self.counts.scanned += 1
        return True

    def lose(self) -> None:
        """The keypoints found no mouse where the track is (:data:`~.keypoints.MIN_KEYPOINTS`):
        the next frame is searched whole."""
        if self._last is not None:
            self.counts.lost += 1
        self._last = None

    @property
    def next_frame(self) -> int:
        """The number the next frame given will have."""
        return self._next

    def __call__(self, frame: NDArray[np.uint8]) -> Detection:
        """The mouse in ``frame`` (H, W) grey or (H, W, 3) BGR uint8, the next of the
        video; ``found`` False when neither the window nor the whole frame holds it."""
        n = self._next
        self._next += 1
        self.contenders = []
        c = self.counts
        c.frames += 1
        last = self._last
        det: Detection | None = None
        if last is not None and n % self.redetect_every:
            side = max(MIN_WINDOW, self.search * self._size)
            # the detector network that found the track follows it; the second's answers
            # are checked by the verifier (alone it takes a blank window for a mouse)
            det = self.detector(frame, (float(last.centre[0]), float(last.centre[1]), side),
                                within=STEP_SIZES * self._size,
                                net="second" if last.from_second else "first")
            if last.from_second:
                det = self.detector.confirmed(frame, det)
            if det.found:
                c.in_window += 1
                # the crop follows the window's answers smoothed with the last crop: the
                # keypoint network then sees the mouse at a steadier scale and place
                det = Detection(SMOOTHING * det.centre + (1 - SMOOTHING) * last.centre,
                                SMOOTHING * det.size + (1 - SMOOTHING) * last.size,
                                det.confidence, True, last.from_second)
            else:
                c.lost += 1
                det = None
        if det is None:
            det = self._whole_frame(frame, key=n % self.redetect_every == 0)
            c.whole_frame += 1
            # the window keeps the scale of this detection until the next one on the whole
            # frame: sized by the window's own answers, it could shrink onto a part of the
            # mouse and zoom further in, frame after frame
            self._size = det.size
        self._last = det if det.found and not self._contest else None
        return det

    def _whole_frame(self, frame: NDArray[np.uint8], *, key: bool) -> Detection:
        """The whole frame's answer, through the contest when one is open or opens."""
        judged = self.detector.judged(frame)
        mice = [d for d in judged if d.found]
        if key or not self._contest:
            self._contest = []
            if not mice:
                return self.detector.refined(frame, judged[0], refine=self.search)
            best = mice[0]
            # a rival need not have reached the verifier's bar on its own: beside a dark
            # tube a small pale mouse seen from below scored 0.14 (not found) against the
            # tube's 0.16 (found), and its crop's keypoints settle it (8.8 against 6.0)
            rivals = [replace(d, found=True) for d in judged
                      if d is not best and d.confidence >= RIVAL_SHARE * best.confidence
                      and self._apart(d, best)]
            if not rivals:
                return self.detector.refined(frame, best, refine=self.search)
            self._contest = [_Contender(d, d.confidence) for d in (best, *rivals)]
            seen = self._contest
            leader = self._contest[0]
        else:
            seen = []
            for con in self._contest:
                near = [d for d in mice if not self._apart(d, con.last)]
                if near:  # most confident first
                    con.last = near[0]
                    con.evidence += near[0].confidence
                    seen.append(con)
            self._contest.sort(key=lambda con: -con.evidence)
            first = self._contest[0]
            if all(first.evidence - con.evidence >= CONTEST_MARGIN
                   for con in self._contest[1:]):
                self._contest = []
            if not seen:  # no contender in this frame: its own answer
                return self.detector.refined(frame, judged[0], refine=self.search)
            leader = max(seen, key=lambda con: con.evidence)
        self.counts.contested += 1
        answer = self.detector.refined(frame, leader.last, refine=self.search)
        self.contenders = [answer, *(con.last for con in seen if con is not leader)]
        return answer

    def settle(self, det: Detection) -> None:
        """End the open contest on ``det`` (one of :attr:`contenders`, judged the mouse
        by other evidence: the keypoints found in its crop); the track follows it."""
        self._contest = []
        self.contenders = []
        self._last = det
        self._size = det.size

    @staticmethod
    def _apart(a: Detection, b: Detection) -> bool:
        return bool(np.linalg.norm(a.centre - b.centre) > STEP_SIZES * max(a.size, b.size))
