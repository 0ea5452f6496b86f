"""Draw 2D keypoints on frames and write labelled videos (``mouse-lifter label-video``).

:func:`draw_pose` draws one frame's skeleton, keypoints (one colour per keypoint, as
DeepLabCut's labelled videos do) and fading trails of the last frames' keypoints.
:class:`Labeller` draws a whole video's frames in the style a :class:`LabelStyle` sets
(the body parts shown, p-cutoff, dot size, colormap, skeleton, keypoints only on a black
background, trail points), keeping the trails between frames.
:func:`write_labelled_video` runs a :class:`~mouse_lifter_ros.core.keypoints.KeypointModel`
over a video file, writes the labelled copy and, optionally, the predictions as
DeepLabCut ``.h5``/``.csv`` files; ``mouse-lifter analyze`` (``core/analysis.py``) draws
its labelled videos with the same :class:`Labeller`.

Coordinates are pixels of the frame, origin at the centre of the top-left pixel, x to
the right and y down (as everywhere in the project). Keypoints are drawn at sub-pixel
positions (OpenCV's fixed-point ``shift``).
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import cv2
import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError, ParameterError, SourceError
from mouse_lifter_ros.core.keypoints import P_CUTOFF
from mouse_lifter_ros.core.video import VideoSource, VideoSourceConfig

if TYPE_CHECKING:
    from mouse_lifter_ros.core.keypoints import KeypointModel

U8 = NDArray[np.uint8]
BGR = tuple[int, int, int]

#: Fixed-point bits of the drawing coordinates (1/16 px).
_SHIFT: Final = 4
_ONE: Final = 1 << _SHIFT
#: Video containers by suffix and the fourcc written into them.
_FOURCCS: Final = {".mp4": "mp4v", ".avi": "MJPG"}


def keypoint_colours(count: int) -> list[BGR]:
    """``count`` distinct saturated BGR colours (0..255), a rainbow from red to magenta,
    one per keypoint in their order."""
    if count <= 0:
        return []
    hue = np.linspace(0, 150, count, endpoint=count == 1).round().astype(np.uint8)
    hsv = np.stack([hue, np.full(count, 255, np.uint8), np.full(count, 255, np.uint8)], -1)
    bgr = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2BGR)[0]
    return [(int(b), int(g), int(r)) for b, g, r in bgr]


def colormap_colours(count: int, colormap: str | None = None) -> list[BGR]:
    """``count`` BGR colours (0..255), one per keypoint in their order.

    ``colormap`` None gives :func:`keypoint_colours`; otherwise a matplotlib colormap
    name (``rainbow``, ``viridis``, ``jet``, ``plasma``, ... as DeepLabCut's ``colormap``
    option) sampled evenly from one end to the other. Raises :class:`ParameterError`
    for an unknown name.
    """
    if colormap is None:
        return keypoint_colours(count)
    if count <= 0:
        return []
    cmap = _colormap(colormap)
    rgba = cmap(np.linspace(0.0, 1.0, count) if count > 1 else np.zeros(1))
    return [(round(255 * b), round(255 * g), round(255 * r)) for r, g, b, _ in rgba]


def colormap_names() -> list[str]:
    """The matplotlib colormap names :func:`colormap_colours` takes, sorted."""
    import matplotlib

    return sorted(matplotlib.colormaps)


def _colormap(name: str) -> Any:
    import matplotlib

    try:
        return matplotlib.colormaps[name]
    except KeyError:
        raise ParameterError(f"colormap {name!r}: not a matplotlib colormap (e.g. rainbow, "
                             "viridis, jet, plasma)") from None


def skeleton_indices(skeleton: Sequence[Sequence[str | int]], names: Sequence[str],
                     *aliases: Sequence[str]) -> list[tuple[int, int]]:
    """Bones as index pairs into ``names``.

    Each bone is a pair of keypoint names (looked up in ``names``, then in each of
    ``aliases``, other name lists in the same order, e.g. a model's own names before its
    ``keypoint_map``) or of indices (int, or a string of digits). Raises
    :class:`InputError` listing every bone that names no keypoint.
    """
    lists = (list(names), *(list(a) for a in aliases))
    bad: list[str] = []
    out: list[tuple[int, int]] = []

    def find(end: str | int) -> int | None:
        if isinstance(end, (int, np.integer)) and not isinstance(end, bool):
            return int(end) if 0 <= end < len(names) else None
        text = str(end)
        for lst in lists:
            if text in lst:
                return lst.index(text)
        if text.isdigit() and int(text) < len(names):
            return int(text)
        return None

    for bone in skeleton:
        if len(bone) != 2:
            bad.append(f"{list(bone)!r} (not a pair)")
            continue
        a, b = find(bone[0]), find(bone[1])
        if a is None or b is None:
            bad.append(f"{list(bone)!r}")
        else:
            out.append((a, b))
    if bad:
        raise InputError(f"skeleton: {len(bad)} bone(s) name no keypoint of "
                         f"{list(names)}: {', '.join(bad)}")
    return out


def _fixed(p: NDArray[Any]) -> tuple[int, int]:
    """Pixel (x, y) -> OpenCV fixed-point point (pixel centres at integers)."""
    return round(float(p[0]) * _ONE), round(float(p[1]) * _ONE)


def _fade(colour: BGR, image: U8, p: NDArray[Any], alpha: float) -> BGR:
    """``colour`` blended with the image's pixel at ``p`` (the local background)."""
    h, w = image.shape[:2]
    x = min(max(round(float(p[0])), 0), w - 1)
    y = min(max(round(float(p[1])), 0), h - 1)
    bg = image[y, x]
    return (int(alpha * colour[0] + (1 - alpha) * int(bg[0])),
            int(alpha * colour[1] + (1 - alpha) * int(bg[1])),
            int(alpha * colour[2] + (1 - alpha) * int(bg[2])))


def draw_pose(frame: U8, xy: NDArray[Any], confidence: NDArray[Any] | None = None, *,
              names: Sequence[str], skeleton: Sequence[Sequence[str | int]] = (),
              p_cutoff: float = P_CUTOFF, trails: NDArray[Any] | None = None,
              colours: Sequence[BGR] | None = None, radius: int | None = None,
              thickness: int | None = None, in_place: bool = False) -> U8:
    """Draw one frame's pose; return the drawn BGR image (H, W, 3) uint8.

    Parameters
    ----------
    frame:
        (H, W) grey, (H, W, 1) or (H, W, 3) BGR uint8. A grey frame is drawn on a BGR
        copy (the only image made); a BGR frame is copied once, or drawn on as it is
        with ``in_place``.
    xy:
        (K, 2) keypoints, px of ``frame``; NaN: not found.
    confidence:
        (K,) 0..1; keypoints below ``p_cutoff`` are not drawn (None: all drawn).
    names:
        The K keypoint names (the skeleton refers to them).
    skeleton:
        Bones as pairs of names or indices (see :func:`skeleton_indices`); a bone is
        drawn when both its ends are.
    trails:
        (T, K, 2) earlier keypoints, oldest first, px, NaN where missing (already cut
        off by confidence); each keypoint's path through them and ``xy`` is drawn as a
        line that fades into the background with age (its colour is blended with the
        pixel under each segment, so no overlay image is made).
    colours:
        K BGR colours (default :func:`keypoint_colours`).
    radius, thickness:
        Dot radius and line width, px (default: scaled to the frame, 3 and 2 at 480 p).

    Raises
    ------
    InputError
        For a frame that is not uint8 grey/BGR, or shapes that do not match ``names``.
    """
    k = len(names)
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or (
            frame.ndim == 3 and frame.shape[2] not in (1, 3)):
        raise InputError(f"draw_pose: frame {frame.dtype} {frame.shape}: uint8 (H, W) or "
                         "(H, W, 3) needed")
    pts = np.asarray(xy, np.float64)
    conf = None if confidence is None else np.asarray(confidence, np.float64)
    if pts.shape != (k, 2) or (conf is not None and conf.shape != (k,)):
        raise InputError(f"draw_pose: xy {pts.shape} and confidence "
                         f"{None if conf is None else conf.shape}: ({k}, 2) and ({k},) "
                         f"for the {k} names")
    if frame.ndim == 3 and frame.shape[2] == 3:
        img: U8 = frame if in_place else frame.copy()
    else:
        img = np.asarray(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), np.uint8)
    h, w = img.shape[:2]
    scale = min(h, w) / 480.0
    r = radius if radius is not None else max(2, round(3 * scale))
    t = thickness if thickness is not None else max(1, round(2 * scale))
    cols = list(colours) if colours is not None else keypoint_colours(k)
    if len(cols) < k:
        raise InputError(f"draw_pose: {len(cols)} colours for {k} keypoints")
    shown: NDArray[np.bool_] = np.asarray(np.isfinite(pts).all(axis=1))
    if conf is not None:
        with np.errstate(invalid="ignore"):
            shown &= conf >= p_cutoff

    if trails is not None and len(trails):
        tr = np.asarray(trails, np.float64)
        if tr.ndim != 3 or tr.shape[1:] != (k, 2):
            raise InputError(f"draw_pose: trails {tr.shape}: (T, {k}, 2) needed")
        path = np.concatenate([tr, np.where(shown[:, None], pts, np.nan)[None]])
        n = len(path)
        for age in range(n - 1, 0, -1):  # oldest first, so newer segments lie on top
            alpha = 1.0 - (age - 0.5) / n
            a, b = path[n - 1 - age], path[n - age]
            ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
            for j in np.flatnonzero(ok).tolist():
                c = _fade(cols[j], img, 0.5 * (a[j] + b[j]), alpha)
                cv2.line(img, _fixed(a[j]), _fixed(b[j]), c, max(1, t - 1), cv2.LINE_AA,
                         _SHIFT)

    for i, j in skeleton_indices(skeleton, names) if skeleton else ():
        if shown[i] and shown[j]:
            mid = tuple((x + y) // 2 for x, y in zip(cols[i], cols[j], strict=True))
            cv2.line(img, _fixed(pts[i]), _fixed(pts[j]), mid, t, cv2.LINE_AA, _SHIFT)
    for j in np.flatnonzero(shown).tolist():
        cv2.circle(img, _fixed(pts[j]), r * _ONE, cols[j], -1, cv2.LINE_AA, _SHIFT)
    return img


def draw_text(image: U8, text: str, *, line: int = 0) -> U8:
    """Write ``text``, white on a black box, at the top-left of the BGR ``image`` (in
    place) on text line ``line`` (0: the first); return ``image``."""
    scale = max(0.4, 0.5 * image.shape[0] / 480.0)
    thick = max(1, round(2 * scale))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, round(4 * scale))
    x0, y0 = pad, pad + line * (th + base + 3 * pad)
    cv2.rectangle(image, (x0 - pad, y0 - pad), (x0 + tw + pad, y0 + th + base + pad),
                  (0, 0, 0), -1)
    cv2.putText(image, text, (x0, y0 + th), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thick, cv2.LINE_AA)
    return image


@dataclass(frozen=True)
class LabelStyle:
    """How a labelled video is drawn (DeepLabCut's ``create_labeled_video`` options).

    Attributes
    ----------
    bodyparts:
        The keypoint names drawn (None: all); a bone is drawn when both its ends are.
    p_cutoff:
        Keypoints whose confidence is below this (0..1) are not drawn.
    dot_size:
        Keypoint dot radius, px (None: scaled to the frame, 3 px at 480 p).
    colormap:
        Matplotlib colormap of the keypoint colours (None: :func:`keypoint_colours`).
    skeleton:
        Draw the model's bones.
    keypoints_only:
        Draw on a black frame instead of the video's.
    trail_points:
        Earlier frames whose keypoints are drawn as a fading trail (0: none).
    """

    bodyparts: tuple[str, ...] | None = None
    p_cutoff: float = P_CUTOFF
    dot_size: int | None = None
    colormap: str | None = None
    skeleton: bool = True
    keypoints_only: bool = False
    trail_points: int = 0


class Labeller:
    """Draw a video's frames one after the other in a :class:`LabelStyle`.

    Parameters
    ----------
    names:
        The K keypoint names, in the order of the arrays given to :meth:`draw`.
    skeleton:
        Bones as pairs of names or indices (see :func:`skeleton_indices`; ``aliases``
        are further name lists for them, e.g. a model's own names).
    style:
        What to draw.

    Raises
    ------
    InputError, ParameterError
        A bone or a body part naming no keypoint; an unknown colormap.
    """

    def __init__(self, names: Sequence[str], skeleton: Sequence[Sequence[str | int]] = (),
                 style: LabelStyle | None = None, *aliases: Sequence[str]) -> None:
        self.names = tuple(names)
        self.style = style or LabelStyle()
        bones = skeleton_indices(skeleton, self.names, *aliases) if skeleton else []
        self.bones = bones if self.style.skeleton else []
        self.colours = colormap_colours(len(self.names), self.style.colormap)
        shown = self.style.bodyparts
        unknown = [p for p in shown or () if p not in self.names]
        if unknown:
            raise InputError(f"body parts {unknown} are not keypoints of the model: "
                             f"{list(self.names)}")
        self._mask = np.array([shown is None or n in shown for n in self.names])
        self._history: deque[NDArray[np.float64]] = deque(
            maxlen=max(self.style.trail_points, 1))

    def reset(self) -> None:
        """Forget the trails (a new video)."""
        self._history.clear()

    def draw(self, frame: U8, xy: NDArray[Any], confidence: NDArray[Any] | None = None,
             text: Sequence[str] = ()) -> U8:
        """Draw one frame; return the BGR image (H, W, 3) uint8.

        ``frame`` (H, W) grey or (H, W, 3) BGR uint8 (a BGR frame is drawn on in place,
        unless the style asks for keypoints only); ``xy`` (K, 2) px, NaN where missing;
        ``confidence`` (K,) 0..1 (None: every finite keypoint counts as found); ``text``:
        lines written at the top left (see :func:`draw_text`).
        """
        st = self.style
        pts = np.array(xy, dtype=np.float64)
        if pts.shape != (len(self.names), 2):
            raise InputError(f"labeller: xy {pts.shape}: ({len(self.names)}, 2) needed")
        hide = ~self._mask
        if confidence is not None:
            with np.errstate(invalid="ignore"):
                hide = hide | ~(np.asarray(confidence, np.float64) >= st.p_cutoff)
        pts[hide] = np.nan
        if st.keypoints_only:
            base: U8 = np.zeros((*frame.shape[:2], 3), np.uint8)
        else:
            base = frame
        trails = np.stack(self._history) if st.trail_points and self._history else None
        img = draw_pose(base, pts, None, names=self.names, skeleton=self.bones,
                        trails=trails, colours=self.colours, radius=st.dot_size,
                        in_place=True)
        for i, line in enumerate(text):
            draw_text(img, line, line=i)
        if st.trail_points:
            self._history.append(pts)
        return img


def open_video_writer(out: str | Path, fps: float, size: tuple[int, int]) -> Any:
    """An open ``cv2.VideoWriter`` for ``out`` (.mp4: mp4v, .avi: MJPG), ``size`` (W, H)
    px at ``fps`` Hz, BGR frames; missing folders are created, a file replaced.

    Raises
    ------
    InputError
        Another suffix.
    SourceError
        When OpenCV cannot open it.
    """
    path = Path(out)
    fourcc = _FOURCCS.get(path.suffix.lower())
    if fourcc is None:
        raise InputError(f"labelled video '{path}': suffix must be one of {sorted(_FOURCCS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, size)
    if not writer.isOpened():
        writer.release()
        raise SourceError(f"labelled video '{path}' could not be opened for writing")
    return writer


def _check_args(p_cutoff: float, trail: int, max_frames: int | None) -> None:
    problems = []
    if not (isinstance(p_cutoff, (int, float)) and math.isfinite(p_cutoff)
            and 0.0 <= p_cutoff <= 1.0):
        problems.append(f"p_cutoff={p_cutoff!r}: between 0 and 1")
    if not isinstance(trail, int) or trail < 0:
        problems.append(f"trail={trail!r}: frames, >= 0")
    if max_frames is not None and (not isinstance(max_frames, int) or max_frames < 1):
        problems.append(f"max_frames={max_frames!r}: >= 1, or None for all")
    if problems:
        raise ParameterError("label video: " + "; ".join(problems))


def open_video_file(video: str | Path) -> VideoSource:
    """Open a video file (never a camera device, whatever its name) delivering BGR
    frames; :class:`SourceError` when it is missing or cannot be decoded."""
    path = Path(video)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise SourceError(f"video file '{video}' {what}")
    # a bare number would open a camera device: name the file unambiguously
    source = str(path) if not str(path).isdigit() else str(Path(".") / path.name)
    return VideoSource(VideoSourceConfig(source=source, encoding="bgr8"))


def _stat(values: list[float], fn: Any) -> float | None:
    return round(float(fn(values)), 4) if values else None


def write_labelled_video(video: str | Path, out: str | Path, model: KeypointModel, *,
                         p_cutoff: float = P_CUTOFF, trail: int = 15,
                         max_frames: int | None = None, dlc_stem: str | Path | None = None,
                         progress: bool = True) -> dict[str, Any]:
    """Run ``model`` over every frame of ``video``; write the labelled copy ``out``.

    Parameters
    ----------
    video:
        A video file OpenCV decodes.
    out:
        The labelled video, ``.mp4`` (mp4v) or ``.avi`` (MJPG), same size and rate as
        ``video``, BGR; replaced if it exists. Each frame shows the skeleton and the
        keypoints with confidence >= ``p_cutoff``, their trails over the last ``trail``
        frames, and a text line: the frame number and whether the mouse was found.
    model:
        The 2D model; its spec's ``skeleton`` is drawn.
    p_cutoff:
        Confidence (0..1) below which a keypoint is not drawn.
    trail:
        Frames of trail per keypoint (0: none).
    max_frames:
        Stop after this many frames (None: the whole video).
    dlc_stem:
        Also write the predictions as DeepLabCut ``<dlc_stem>.h5`` and ``.csv``
        (replaced if they exist): bodyparts ``model.names``, scorer the model's name,
        ``x``/``y`` px of the full frame (NaN where the mouse was not found, every
        keypoint otherwise, whatever its confidence, as DeepLabCut does) and
        ``likelihood`` the keypoint confidence. Frame ``i`` has time ``i / fps``.
    progress:
        Show a tqdm progress bar on stderr.

    Returns
    -------
    dict
        JSON-ready: ``frames`` written, ``frames_with_mouse`` (the detector found it, or
        no detector, and at least one keypoint reached ``p_cutoff``),
        ``mean_confidence``/``median_confidence`` over the keypoints of those frames
        (None without any), ``inference_ms_p50``/``_p99`` (the model call per frame),
        ``fps``, ``width``, ``height``, ``model``, ``video``, ``out``, ``dlc_h5``,
        ``dlc_csv`` (None without ``dlc_stem``).

    Raises
    ------
    SourceError
        A missing or undecodable video, or an output OpenCV cannot open.
    ParameterError, InputError
        Bad arguments; an output suffix other than .mp4/.avi.
    """
    from tqdm import tqdm

    from mouse_lifter_ros.core.pose_files import DlcWriter, FrameRecord
    from mouse_lifter_ros.core.tracking import MouseTracker

    _check_args(p_cutoff, trail, max_frames)
    out = Path(out)
    if _FOURCCS.get(out.suffix.lower()) is None:
        raise InputError(f"labelled video '{out}': suffix must be one of {sorted(_FOURCCS)}")
    names = model.names
    labeller = Labeller(names, model.spec.skeleton,
                        LabelStyle(p_cutoff=p_cutoff, trail_points=trail), model.spec.keypoints)
    src = open_video_file(video)
    fps = src.fps
    width, height = src.output_size
    total = src.frame_count if max_frames is None else min(src.frame_count or max_frames,
                                                           max_frames)
    writer: Any = None
    dlc: DlcWriter | None = None
    bar = tqdm(total=total, unit="frame", disable=not progress, file=sys.stderr,
               desc=f"label {Path(video).name}")
    times: list[float] = []
    confs: list[NDArray[np.float32]] = []
    n = found_frames = 0
    tracker = MouseTracker(model.detector) if model.detector is not None else None
    try:
        writer = open_video_writer(out, fps, (width, height))
        if dlc_stem is not None:
            dlc = DlcWriter(dlc_stem, names, scorer=model.spec.name, overwrite=True)
        while max_frames is None or n < max_frames:
            frame = src.read()
            if frame is None:
                break
            t0 = time.perf_counter()
            kp = model(frame, tracker=tracker)
            times.append((time.perf_counter() - t0) * 1e3)
            if dlc is not None:
                dlc.write(FrameRecord(frame=n, time_s=n / fps, keypoints_2d=kp.xy,
                                      likelihood=kp.confidence))
            shown = kp.with_cutoff(p_cutoff)
            found = (kp.detection is None or kp.detection.found) and bool(
                np.isfinite(shown.xy).all(axis=1).any())
            if found:
                found_frames += 1
                confs.append(kp.confidence)
            status = (f"mouse, mean confidence {float(np.mean(kp.confidence)):.2f}"
                      if found else "no mouse")
            writer.write(labeller.draw(frame, kp.xy, kp.confidence,
                                       [f"frame {n}  {status}"]))
            n += 1
            bar.update(1)
    finally:
        bar.close()
        src.close()
        if writer is not None:
            writer.release()
        if dlc is not None:
            dlc.close()
    if n == 0:
        raise SourceError(f"video file '{video}' delivered no frame")
    allc = np.concatenate(confs).astype(np.float64).tolist() if confs else []
    return {
        "video": str(video),
        "out": str(out),
        "dlc_h5": str(dlc.h5_path) if dlc is not None else None,
        "dlc_csv": str(dlc.csv_path) if dlc is not None else None,
        "model": model.description,
        "frames": n,
        "frames_with_mouse": found_frames,
        "fps": round(float(fps), 4),
        "width": int(width),
        "height": int(height),
        "p_cutoff": p_cutoff,
        "mean_confidence": _stat(allc, np.mean),
        "median_confidence": _stat(allc, np.median),
        "inference_ms_p50": _stat(times, lambda v: np.percentile(v, 50)),
        "inference_ms_p99": _stat(times, lambda v: np.percentile(v, 99)),
    }
