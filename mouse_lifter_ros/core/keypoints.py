"""2D keypoints from one image: find the mouse, cut a crop around it, run a keypoint net.

The cost does not grow with the camera's resolution: the detector sees the frame
letterboxed into :data:`DETECTOR_INPUT` (160 x 128 px) and the keypoint network sees a
square crop of fixed size around the mouse, cut and resampled from the full frame in one
``cv2.warpAffine``. Colour frames are turned grey after the crop, not before.

Models are ONNX files described by a small YAML (see :class:`ModelSpec`), run by a
:class:`Backend`: :class:`OnnxBackend` uses ONNX Runtime's CUDA provider when there is
one and the CPU otherwise. A lab's own ONNX network (for example an exported DeepLabCut
model) runs through the same code with its own YAML.

Coordinates are pixels of the full source image with the origin at the centre of the
top-left pixel, x to the right and y down (as in ``msg/Keypoints2D.msg``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal, Protocol, get_args

import cv2
import numpy as np
import yaml
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError, MouseLifterError, ParameterError
from mouse_lifter_ros.core.views import view_problem

FloatArray = NDArray[np.float32]
U8 = NDArray[np.uint8]

#: Detector input (width, height), px: frames are letterboxed into it, top-left aligned.
DETECTOR_INPUT: Final = (160, 128)
#: Keypoints that define the mouse's box: its centre and size (largest pairwise distance).
BODY_KEYPOINTS: Final = ("nose", "left_ear", "right_ear", "tail_base")
#: Side of the keypoint crop as a multiple of the body size.
CROP_SCALE: Final = 1.6
#: Smallest crop side, px of the source image.
MIN_CROP: Final = 24.0
#: A whole-frame peak of at least this fraction of the detector's threshold is looked at
#: again in a window (:meth:`Detector.locate`): a small mouse may only reach the
#: threshold when it is seen larger.
CANDIDATE: Final = 0.6
#: Side of the detector's second look (:meth:`Detector.locate`) and of the tracker's
#: search window, in mouse sizes: the mouse is then about 26 px of the detector's input,
#: the scale it was trained on, and may move two sizes either way between frames.
WINDOW_SIZES: Final = 5.0
#: With a verifier: the whole-frame peaks it looks at, and the least verifier probability
#: that counts as a mouse (99 % of held-out synthetic mouse crops score above it).
VERIFY_PEAKS: Final = 6
MOUSE_PROBABILITY: Final = 0.1
#: With a verifier (:meth:`Detector.judged`): the lowest peak looked at, and the
#: fraction of the threshold that confidence x probability must reach (on held-out
#: synthetic frames 0.5 let 9 of 80 empty frames through and 0.3 15, but 0.5 lost clear
#: mice the verifier was unsure of: a 0.73 peak at probability 0.31 in a 1920x1080 frame).
VERIFY_FLOOR: Final = 0.1
VERIFIED: Final = 0.3
#: The verifier's crop: side in px, and its width in detected mouse sizes.
VERIFIER_PX: Final = 64
VERIFIER_SCALE: Final = 2.0
#: How many views of its crop the verifier judges (``views`` in a detector YAML; 1 when
#: absent): 1, the crop as cut; 8, its four quarter turns, each also mirrored, with the
#: probabilities averaged. Seen from above the arena has no up and no handedness (the
#: verifier trains on turned and mirrored crops), and one view's doubt at a wall or in
#: a corner is often not the others': on the real XMWell frames 8 views found 3 of the 4
#: mice a single view rejected, at about equal figures on held-out synthetic scenes
#: (models/keypoints2d/MODEL_CARD.md).
VERIFIER_VIEWS: Final = 8
#: Which of a detector's networks :meth:`Detector.candidates` asks: its first, its
#: ``second_detector`` (the first where it has none), or both.
DetectorNet = Literal["first", "second", "both"]
DETECTOR_NETS: Final[tuple[str, ...]] = get_args(DetectorNet)
#: Smallest side of a detector window, px.
MIN_WINDOW: Final = 64.0
MODELS_DIR: Final = Path(__file__).resolve().parent.parent / "models"
#: The shipped 2D model of each camera view (:data:`~.views.VIEWS`).
SHIPPED_MODELS: Final[dict[str, Path]] = {
    "top": MODELS_DIR / "keypoints2d" / "default.yaml",
    "bottom": MODELS_DIR / "keypoints2d_bottom" / "default.yaml"}
DEFAULT_MODEL: Final = SHIPPED_MODELS["top"]
DEVICES: Final = ("auto", "cpu", "cuda")
#: Default likelihood (0..1) below which a keypoint is not used: filled in by the lifter,
#: left out of drawings, plots and 2D locomotion. Files keep every keypoint.
P_CUTOFF: Final = 0.5
#: A crop where fewer keypoints than this reach :data:`P_CUTOFF` is cut again
#: :data:`WIDER` times wider: the detector may have taken the mouse for smaller than it is
#: (a dark mouse rearing on a dark floor: half its size), and the crop then holds part
#: of it. The wider crop's answer is taken when its confidences sum :data:`WIDER_GAIN`
#: higher and its keypoints span a mouse :data:`WIDER_LARGER` times the detected size.
FEW_KEYPOINTS: Final = 6
WIDER: Final = 1.6
WIDER_GAIN: Final = 0.5
WIDER_LARGER: Final = 1.15
#: A crop where fewer keypoints than this reach :data:`P_CUTOFF` holds no mouse: the
#: detector took something else for it (a cup beside a white mouse on a white floor).
MIN_KEYPOINTS: Final = 2
#: The tracker's contest between mouse-like answers far apart (:mod:`.tracking`) is
#: settled on the one whose crop's keypoint confidences sum this much above the others'
#: (a cup beside a grey mouse: 6.0 against 7.5).
SETTLE_GAIN: Final = 1.0
#: A frame where the whole frame's letterbox finds no mouse is searched again in
#: overlapping square windows (:func:`scan_windows`, :meth:`Detector.scan`): windows
#: 1 / :data:`SCAN_ZOOM` of the frame's longer side (the mouse seen 1.6-2 times larger
#: than in the letterbox), :data:`SCAN_OVERLAP` of them to a window's width along each
#: axis; :data:`SCAN_PEAKS` peaks of each network per window. A white mouse on a white
#: floor or a 30-60 px mouse beside a dark cup often leaves the letterbox no peak at all
#: (chosen on seed 4242's validation frames, models/keypoints2d/MODEL_CARD.md).
SCAN_ZOOM: Final = 2.0
SCAN_OVERLAP: Final = 1.5
SCAN_PEAKS: Final = 3
#: A scan's answer is the mouse only when the keypoint network agrees: its crop's
#: confidences sum to at least this (of 14). On 240 rendered arenas with no mouse
#: (validation seeds 4242, 4343, 4444) 3 scans reached it (5.5: 11); the mice the scan
#: found on seed 4242 mostly summed 6-9. The :data:`SCAN_TRIES` most confident answers
#: are tried, in order.
SCAN_EVIDENCE: Final = 6.0
SCAN_TRIES: Final = 3
#: A scan's peaks go to the verifier's 8 views only where its first view gives them this
#: probability or more (on seed 4242's frames it kept 11 peaks a frame of 28, and no
#: answer changed): the scan costs about a quarter less.
SCAN_SIFT: Final = 0.02
#: A model whose YAML says ``tail_crop: true`` (its network learnt tail crops) cuts a
#: second crop of the same size centred on this keypoint where the first crop found it,
#: else :data:`TAIL_REACH` body sizes beyond the tail base, away from the lumbar spine;
#: the tail keypoints it finds surer replace the first crop's. The first crop, centred
#: on the body, mostly cuts off the tail's tip.
TAIL_CROP: Final = "tail_mid"
TAIL_REACH: Final = 0.45
#: The keypoints the tail crop may replace.
TAIL_KEYPOINTS: Final = ("tail_mid", "tail_tip")
#: Whether the tail crop runs the model's flip test and its turn test too (more
#: network runs; without the turns, 9 ms less a frame and `eval-3d`'s validation seeds
#: 21 / 22 / 23 at 8.44 / 10.59 / 6.97 mm against 8.44 / 10.36 / 7.02).
TAIL_FLIP: Final = True
TAIL_TURN: Final = True
#: A model whose YAML says ``turn_test: true`` (its network learnt crops at any angle)
#: is also run on its crop turned by a quarter, a half and three quarters: 4 views, 8
#: with ``flip_test`` (each also mirrored). Per keypoint, the views within this many
#: input px of their medoid (the view nearest all the others) are averaged, weighted by
#: confidence, and the confidence is the mean over all views (:func:`combine_views`):
#: one or two views on the wrong spot then do not move the answer, where a mean moves
#: it by their share of the miss. On the real `xmwell-oft` frames, zero-shot: nose 4.23
#: -> 3.86 px, tail base 4.01 -> 3.01 px (models/keypoints2d/MODEL_CARD.md).
TURN_AGREE: Final = 4.0
OUTPUT_KINDS: Final = ("heatmap_offset", "heatmap", "keypoints")


class ModelError(MouseLifterError, RuntimeError):
    """A model file or description that is missing, corrupt or inconsistent."""


# ----------------------------------------------------------------------------- geometry


def body_box(points: NDArray[Any], names: tuple[str, ...] | None = None
             ) -> tuple[NDArray[np.float64], float]:
    """Centre (2,) px and size (px) of the mouse from its keypoints.

    ``points`` is (K, 2) in the order of ``names`` (default: the body model's 14). Only
    finite :data:`BODY_KEYPOINTS` count; the centre is the middle of their bounding box
    and the size their largest pairwise distance, so it does not change as the mouse
    turns. Raises :class:`InputError` with fewer than two finite points.
    """
    from mouse_lifter_ros.core.body import KEYPOINTS

    names = names or KEYPOINTS
    idx = [names.index(n) for n in BODY_KEYPOINTS if n in names]
    p = np.asarray(points, np.float64)[idx]
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) < 2:
        raise InputError(f"body box: {len(p)} finite body keypoints, at least 2 needed")
    centre = 0.5 * (p.min(axis=0) + p.max(axis=0))
    d = np.linalg.norm(p[:, None] - p[None], axis=-1)
    return centre, float(d.max())


def _spanned(xy: NDArray[Any], confidence: NDArray[Any], names: tuple[str, ...]) -> float:
    """:func:`body_box`'s size (px) of the keypoints ``xy`` (K, 2) whose ``confidence``
    (K,) reaches :data:`P_CUTOFF`; 0 with fewer than two."""
    seen = np.where((confidence >= P_CUTOFF)[:, None], xy, np.nan)
    try:
        return body_box(seen, names)[1]
    except InputError:  # fewer than two of them are body keypoints
        return 0.0


def letterbox_geometry(width: int, height: int) -> tuple[float, int, int]:
    """Scale and resized (width, height) of a ``width`` x ``height`` frame letterboxed
    into :data:`DETECTOR_INPUT` (aspect kept, placed at the top-left)."""
    s = min(DETECTOR_INPUT[0] / width, DETECTOR_INPUT[1] / height)
    return s, min(DETECTOR_INPUT[0], round(width * s)), min(DETECTOR_INPUT[1], round(height * s))


def letterbox(frame: NDArray[np.uint8]) -> tuple[U8, float]:
    """Grey (128, 160) detector input of ``frame`` (H, W) or (H, W, 3 BGR) and its scale."""
    h, w = frame.shape[:2]
    s, ow, oh = letterbox_geometry(w, h)
    small = cv2.resize(frame, (ow, oh), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    canvas = np.zeros((DETECTOR_INPUT[1], DETECTOR_INPUT[0]), np.uint8)
    canvas[:oh, :ow] = small
    return canvas, s


def scan_windows(width: int, height: int, *, zoom: float = SCAN_ZOOM,
                 overlap: float = SCAN_OVERLAP) -> list[tuple[float, float, float]]:
    """The square windows (centre x, centre y, side) px that :meth:`Detector.scan` looks
    at in a ``width`` x ``height`` px frame: the side is the frame's longer side /
    ``zoom`` (at least :data:`MIN_WINDOW`); along each axis longer than a window,
    ``ceil(overlap * length / side)`` (at least 2) centres from half a side in from one
    edge to half a side in from the other; one centred window along a shorter axis."""
    side = max(MIN_WINDOW, max(width, height) / zoom)

    def centres(length: int) -> list[float]:
        if length <= side:
            return [(length - 1) / 2.0]
        n = max(2, math.ceil(overlap * length / side))
        return [float(c) for c in np.linspace(side / 2 - 0.5, length - side / 2 - 0.5, n)]

    return [(x, y, side) for y in centres(height) for x in centres(width)]


def crop_matrix(centre: NDArray[Any], side: float, out: int) -> NDArray[np.float64]:
    """2x3 affine from crop pixels to source pixels for a square window of ``side`` px
    centred on ``centre``, sampled at ``out`` x ``out`` (for ``WARP_INVERSE_MAP``)."""
    s = side / out
    o = (out - 1) / 2.0
    return np.array([[s, 0.0, centre[0] - o * s], [0.0, s, centre[1] - o * s]])


def cut_crop(frame: NDArray[np.uint8], centre: NDArray[Any], side: float, out: int,
             *, grey: bool = True) -> U8:
    """The square crop (out, out[, 3]) of ``frame`` (bilinear; black outside the frame).

    A window more than twice the crop's size is first shrunk by an integer factor with
    area averaging (only the window, never the whole frame), so that it does not alias.
    """
    m = crop_matrix(centre, side, out)
    src = frame
    k = int(side // (2 * out)) + 1 if side > 2 * out else 1
    if k > 1:
        h, w = frame.shape[:2]
        x0 = max(0, math.floor(m[0, 2]) - k)
        y0 = max(0, math.floor(m[1, 2]) - k)
        x1 = min(w, math.ceil(m[0, 2] + side) + k)
        y1 = min(h, math.ceil(m[1, 2] + side) + k)
        if x1 - x0 >= k and y1 - y0 >= k:
            win = frame[y0:y0 + (y1 - y0) // k * k, x0:x0 + (x1 - x0) // k * k]
            src = cv2.resize(win, ((x1 - x0) // k, (y1 - y0) // k), interpolation=cv2.INTER_AREA)
            # reduced pixel i is the mean of window pixels k*i .. k*i+k-1
            m = np.array([[m[0, 0] / k, 0.0, (m[0, 2] - x0 - (k - 1) / 2) / k],
                          [0.0, m[1, 1] / k, (m[1, 2] - y0 - (k - 1) / 2) / k]])
    crop = cv2.warpAffine(src, m, (out, out), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if grey and crop.ndim == 3:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return np.asarray(crop, np.uint8)


def verifier_crop(frame: NDArray[np.uint8], centre: NDArray[Any], size: float, *,
                  px: int = VERIFIER_PX, scale: float = VERIFIER_SCALE) -> U8:
    """The grey (px, px) crop a detector's verifier judges: ``scale`` mouse sizes wide
    around ``centre`` (2,) px for a mouse of ``size`` px; the runtime and the verifier's
    training cut it here alike."""
    return cut_crop(frame, np.asarray(centre, np.float64), max(MIN_CROP, scale * size), px)


# ------------------------------------------------------------------------ model specs


@dataclass(frozen=True)
class InputSpec:
    """What a network takes: ``width`` x ``height`` px, 1 (grey) or 3 channels in
    ``colour`` order, ``layout`` NCHW or NHWC, float32 ``(pixel - mean) / std`` per
    channel (pixels 0..255)."""

    width: int
    height: int
    channels: int = 1
    layout: str = "NCHW"
    colour: str = "bgr"
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)


@dataclass(frozen=True)
class OutputSpec:
    """How to read a keypoint network's outputs.

    ``kind``:
      ``heatmap_offset``: a heatmap per keypoint plus an x, y offset per keypoint
      (DeepLabCut's score map and location refinement); ``heatmap``: heatmaps only
      (sub-cell peak from a quadratic fit); ``keypoints``: (1, K, 3) x, y, confidence in
      input pixels.
    A keypoint is at ``cell * stride + grid_offset + offset * offset_scale`` input px.
    ``activation``: ``sigmoid`` when heatmaps are logits, ``none`` when probabilities.
    ``layout``: of the heatmap outputs, NCHW or NHWC. ``heatmap`` and ``offset`` name
    the outputs (default: the first and second). ``offset_order``: ``xy`` (x, y of each
    keypoint in turn, as DeepLabCut's locref) or ``xxyy`` (all x, then all y).
    """

    kind: str = "heatmap_offset"
    stride: float = 8.0
    grid_offset: float = 3.5
    offset_scale: float = 8.0
    activation: str = "sigmoid"
    layout: str = "NCHW"
    heatmap: str | None = None
    offset: str | None = None
    offset_order: str = "xy"


@dataclass(frozen=True)
class ModelSpec:
    """A keypoint model described by YAML (see ``models/keypoints2d/default.yaml``).

    ``crop``: ``detector`` (find the mouse with ``detector``, a YAML beside this one,
    and cut a square of ``crop_scale`` times its size) or ``full`` (the network sees the
    whole frame resized to its input). ``keypoint_map`` renames the model's keypoints to
    the body model's names downstream (``{their: ours}``)."""

    path: Path
    name: str
    onnx: Path
    keypoints: tuple[str, ...]
    input: InputSpec
    output: OutputSpec
    crop: str = "detector"
    detector: Path | None = None
    crop_scale: float = CROP_SCALE
    keypoint_map: dict[str, str] = field(default_factory=dict)
    skeleton: tuple[tuple[str, str], ...] = ()
    flip_test: bool = False
    view: str = "top"
    """The side the model saw the mouse from in training (:data:`~.views.VIEWS`)."""
    tail_crop: bool = False
    """Cut the second crop around the tail (:data:`TAIL_CROP`)."""
    turn_test: bool = False
    """Run the crop turned by quarter turns too (:data:`TURN_AGREE`)."""

    @property
    def flip_index(self) -> NDArray[np.intp]:
        """(K,) each keypoint's mirror partner (left <-> right by name; itself if none)."""
        names = self.keypoints
        out = []
        for n in names:
            m = n.replace("left", "\0").replace("right", "left").replace("\0", "right")
            out.append(names.index(m) if m in names else names.index(n))
        return np.asarray(out, np.intp)

    @property
    def output_names(self) -> tuple[str, ...]:
        """Keypoint names as published: mapped to ours where the YAML says so."""
        return tuple(self.keypoint_map.get(k, k) for k in self.keypoints)


@dataclass(frozen=True)
class DetectorSpec:
    """The mouse detector: letterboxed grey frame in, centre heatmap and box out."""

    path: Path
    name: str
    onnx: Path
    input: InputSpec
    stride: float = 8.0
    threshold: float = 0.3
    verifier: Path | None = None
    """Optional second-stage network: a grey crop (``verifier_px`` square, ``verifier_scale``
    detected sizes wide, normalised as the detector's input) in, one logit "a mouse" out."""
    verifier_px: int = VERIFIER_PX
    verifier_scale: float = VERIFIER_SCALE
    verifier_views: int = 1
    """1 or 8 (:data:`VERIFIER_VIEWS`)."""
    second_detector: Path | None = None
    """Optional second detector network (the same input and outputs) whose peaks the
    verifier judges with the first's (:meth:`Detector.judged`)."""
    scan: bool = True
    """Whether a frame where the whole frame finds no mouse is searched window by window
    (:meth:`Detector.scan`; it needs a verifier)."""


def read_model_yaml(path: Path, what: str) -> dict[str, Any]:
    """The top-level mapping of a model YAML; ``what`` names the model in errors.

    Raises
    ------
    ModelError
        The file is missing, not YAML, or not a mapping.
    """
    if not path.is_file():
        raise ModelError(f"{what} {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelError(f"{what} {path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{what} {path}: expected a mapping at the top level")
    return data


def parse_input_spec(d: object, problems: list[str]) -> InputSpec:
    """A model YAML's ``input`` mapping as an :class:`InputSpec`; what is wrong with it
    goes to ``problems`` (a placeholder spec is returned then)."""
    if not isinstance(d, dict):
        problems.append("input: a mapping with width, height, channels, mean, std needed")
        return InputSpec(1, 1)
    try:
        ch = int(d.get("channels", 1))
        spec = InputSpec(width=int(d["width"]), height=int(d["height"]), channels=ch,
                         layout=str(d.get("layout", "NCHW")),
                         colour=str(d.get("colour", "bgr")).lower(),
                         mean=tuple(float(v) for v in d.get("mean", [0.0] * ch)),
                         std=tuple(float(v) for v in d.get("std", [1.0] * ch)))
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(f"input: {exc!r}; width and height (int) are required")
        return InputSpec(1, 1)
    if spec.width < 8 or spec.height < 8:
        problems.append(f"input size {spec.width}x{spec.height}: at least 8x8")
    if spec.channels not in (1, 3):
        problems.append(f"input.channels={spec.channels}: 1 or 3")
    if spec.layout not in ("NCHW", "NHWC"):
        problems.append(f"input.layout={spec.layout!r}: NCHW or NHWC")
    if spec.colour not in ("bgr", "rgb"):
        problems.append(f"input.colour={spec.colour!r}: bgr or rgb")
    if len(spec.mean) not in (1, spec.channels) or len(spec.std) not in (1, spec.channels):
        problems.append("input.mean/std: one value or one per channel")
    if any(s == 0 for s in spec.std):
        problems.append("input.std: must not be 0")
    return spec


def _edge_name(v: Any, names: list[str]) -> str:
    """A skeleton end given by name or by index into ``names``."""
    if isinstance(v, int) and 0 <= v < len(names):
        return names[v]
    return str(v)


def _output_spec(d: Any, problems: list[str]) -> OutputSpec:
    if not isinstance(d, dict):
        problems.append("output: a mapping with kind, stride, ... needed")
        return OutputSpec()
    fields = OutputSpec.__dataclass_fields__
    unknown = sorted(set(d) - set(fields))
    if unknown:
        problems.append(f"output: unknown keys {unknown}; allowed {', '.join(fields)}")
    vals = {k: d[k] for k in fields if k in d}
    for k in ("stride", "grid_offset", "offset_scale"):
        if k in vals:
            try:
                vals[k] = float(vals[k])
            except (TypeError, ValueError):
                problems.append(f"output.{k}={vals[k]!r}: a number")
                del vals[k]
    out = OutputSpec(**vals)
    if out.kind not in OUTPUT_KINDS:
        problems.append(f"output.kind={out.kind!r}: allowed {', '.join(OUTPUT_KINDS)}")
    if out.activation not in ("sigmoid", "none"):
        problems.append(f"output.activation={out.activation!r}: sigmoid or none")
    if out.layout not in ("NCHW", "NHWC"):
        problems.append(f"output.layout={out.layout!r}: NCHW or NHWC")
    if out.offset_order not in ("xy", "xxyy"):
        problems.append(f"output.offset_order={out.offset_order!r}: xy (x, y per keypoint) "
                        "or xxyy (all x, then all y)")
    if out.stride <= 0:
        problems.append(f"output.stride={out.stride}: must be > 0")
    return out


def shipped_model(view: str = "top") -> Path:
    """The YAML of the shipped 2D model for a camera ``view`` (top or bottom)."""
    if (problem := view_problem(view)) is not None:
        raise ModelError(f"shipped model: {problem}")
    return SHIPPED_MODELS[view]


def check_model_view(spec: ModelSpec, view: str) -> None:
    """Raise :class:`ModelError` when the model was trained on another ``view`` than the
    camera's: a top-view model finds nothing useful in a view from below, and the reverse."""
    if spec.view != view:
        raise ModelError(f"model {spec.path}: trained on {spec.view} views, but the camera "
                         f"sees the mouse from the {view}; give a {view}-view model, or "
                         f"none for the shipped one")


def _file_problem(yaml_path: Path, key: str, value: object) -> list[str]:
    """``[problem]`` when the file ``value`` that ``key`` of the YAML at ``yaml_path``
    names (relative to it) is not there, else ``[]``: a model folder copied without a
    file it names fails here, where the description is read, not in whatever opens the
    file first."""
    f = yaml_path.parent / str(value)
    return [] if f.is_file() else [f"{key} {f}: no such file"]


def load_model_spec(path: str | Path | None = None, *, view: str = "top") -> ModelSpec:
    """Read a keypoint model's YAML (default: the shipped model of ``view``). Every
    problem in the file is listed in one :class:`ModelError`."""
    p = Path(path) if path else shipped_model(view)
    if p.suffix == ".onnx":
        raise ModelError(f"model {p}: give the YAML that describes the ONNX file "
                         "(input size, normalisation, output kind, keypoint names)")
    d = read_model_yaml(p, "model description")
    problems: list[str] = []
    inp = parse_input_spec(d.get("input"), problems)
    out = _output_spec(d.get("output", {}) or {}, problems)
    kps = d.get("keypoints")
    if not (isinstance(kps, list) and kps and all(isinstance(k, str) for k in kps)):
        problems.append("keypoints: a non-empty list of names needed")
        kps = []
    crop_d = d.get("crop") or {}
    if not isinstance(crop_d, dict):
        problems.append(f"crop={crop_d!r}: a mapping such as {{mode: full}} or "
                        "{mode: detector, detector: detector.yaml}")
        crop_d = {}
    crop = str(crop_d.get("mode", "detector"))
    det = crop_d.get("detector")
    try:
        crop_scale = float(crop_d.get("scale", CROP_SCALE))
    except (TypeError, ValueError):
        problems.append(f"crop.scale={crop_d.get('scale')!r}: a number")
        crop_scale = CROP_SCALE
    if crop == "detector" and inp.width != inp.height:
        problems.append(f"input size {inp.width}x{inp.height}: a detector crop is square, "
                        "so width must equal height")
    if crop not in ("detector", "full"):
        problems.append(f"crop.mode={crop!r}: detector or full")
    if crop == "detector" and not det:
        problems.append("crop.detector: the detector's YAML is needed with crop.mode detector")
    if "onnx" not in d:
        problems.append("onnx: the network file (relative to this YAML) is needed")
    else:
        problems += _file_problem(p, "onnx", d["onnx"])
    if crop == "detector" and det:
        problems += _file_problem(p, "crop.detector", det)
    kmap = d.get("keypoint_map") or {}
    if not isinstance(kmap, dict):
        problems.append("keypoint_map: a mapping {their name: our name}")
        kmap = {}
    skel = d.get("skeleton") or []
    if not (isinstance(skel, list) and all(isinstance(e, list | tuple) and len(e) == 2
                                           for e in skel)):
        problems.append("skeleton: a list of [name, name] pairs")
        skel = []
    skeleton = tuple((_edge_name(a, kps), _edge_name(b, kps)) for a, b in skel)
    model_view = d.get("view", "top")
    if (problem := view_problem(model_view)) is not None:
        problems.append(problem)
    unknown = sorted({n for e in skeleton for n in e} - set(kps))
    if unknown and kps:
        problems.append(f"skeleton: {unknown} are not among the keypoints")
    for switch in ("flip_test", "tail_crop", "turn_test"):
        if not isinstance(d.get(switch, False), bool):
            problems.append(f"{switch}={d[switch]!r}: true or false")
    if d.get("turn_test") is True and inp.width != inp.height:
        problems.append(f"turn_test: a crop turned by a quarter keeps its size only when "
                        f"square; the input is {inp.width}x{inp.height}")
    if problems:
        raise ModelError(f"model description {p}: " + "; ".join(problems))
    return ModelSpec(path=p, name=str(d.get("name", p.stem)), onnx=p.parent / str(d["onnx"]),
                     keypoints=tuple(kps), input=inp, output=out, crop=crop,
                     detector=p.parent / str(det) if det else None,
                     crop_scale=crop_scale,
                     keypoint_map={str(k): str(v) for k, v in kmap.items()},
                     skeleton=skeleton, flip_test=d.get("flip_test", False) is True,
                     view=str(model_view), tail_crop=d.get("tail_crop", False) is True,
                     turn_test=d.get("turn_test", False) is True)


def load_detector_spec(path: str | Path) -> DetectorSpec:
    """Read a detector's YAML; every problem in one :class:`ModelError`."""
    p = Path(path)
    d = read_model_yaml(p, "detector description")
    problems: list[str] = []
    inp = parse_input_spec(d.get("input"), problems)
    if (inp.width, inp.height) != DETECTOR_INPUT:
        problems.append(f"input size {inp.width}x{inp.height}: the detector takes "
                        f"{DETECTOR_INPUT[0]}x{DETECTOR_INPUT[1]}")
    if d.get("kind", "centre_size") != "centre_size":
        problems.append(f"kind={d.get('kind')!r}: only centre_size")
    if "onnx" not in d:
        problems.append("onnx: the network file (relative to this YAML) is needed")
    else:
        problems += _file_problem(p, "onnx", d["onnx"])
    threshold = float(d.get("threshold", 0.3))
    if not 0.0 < threshold < 1.0:
        problems.append(f"threshold={threshold}: between 0 and 1")
    ver = d.get("verifier")
    if ver is not None and not (isinstance(ver, dict) and "onnx" in ver):
        problems.append(f"verifier={ver!r}: a mapping with onnx (and px, scale, views)")
        ver = None
    if ver is not None:
        if ver.get("views", 1) not in (1, VERIFIER_VIEWS):
            problems.append(f"verifier views={ver['views']!r}: 1 (the crop as cut) or "
                            f"{VERIFIER_VIEWS} (its turns and mirrors)")
        problems += _file_problem(p, "verifier.onnx", ver["onnx"])
    second = d.get("second_detector")
    if second is not None and not (isinstance(second, dict) and "onnx" in second):
        problems.append(f"second_detector={second!r}: a mapping with onnx (the network)")
    elif second is not None:
        problems += _file_problem(p, "second_detector.onnx", second["onnx"])
        if ver is None:
            problems.append("second_detector: needs a verifier (it judges the peaks of both "
                            "networks)")
    scan = d.get("scan", True)
    if not isinstance(scan, bool):
        problems.append(f"scan={scan!r}: true or false")
    if problems:
        raise ModelError(f"detector description {p}: " + "; ".join(problems))
    extra: dict[str, Any] = {} if ver is None else {
        "verifier": p.parent / str(ver["onnx"]), "verifier_px": int(ver.get("px", VERIFIER_PX)),
        "verifier_scale": float(ver.get("scale", VERIFIER_SCALE)),
        "verifier_views": int(ver.get("views", 1))}
    if second is not None:
        extra["second_detector"] = p.parent / str(second["onnx"])
    return DetectorSpec(path=p, name=str(d.get("name", p.stem)), onnx=p.parent / str(d["onnx"]),
                        input=inp, stride=float(d.get("stride", 8)), threshold=threshold,
                        scan=scan, **extra)


# ---------------------------------------------------------------------------- backends


class Backend(Protocol):
    """Runs one network: float32 input in, its outputs (in the network's order) out."""

    #: What runs it, e.g. ``onnxruntime CUDAExecutionProvider``.
    description: str
    output_names: tuple[str, ...]

    def run(self, x: NDArray[np.float32]) -> list[NDArray[np.float32]]: ...


class OnnxBackend:
    """ONNX Runtime: the CUDA provider when ``device`` is ``cuda``, or ``auto`` and CUDA
    is available; the CPU provider otherwise. ``threads`` (0: ONNX Runtime's choice)
    sets the CPU intra-op threads."""

    def __init__(self, path: str | Path, *, device: str = "auto", threads: int = 0) -> None:
        import onnxruntime as ort

        p = Path(path)
        if device not in DEVICES:
            raise ParameterError(f"device={device!r}: allowed {', '.join(DEVICES)}")
        if not p.is_file():
            raise ModelError(f"model file {p}: no such file")
        available = ort.get_available_providers()
        has_cuda = "CUDAExecutionProvider" in available
        if device == "cuda" and not has_cuda:
            raise ModelError(f"model file {p}: device 'cuda' asked for but this ONNX Runtime "
                             f"has only {', '.join(available)}")
        providers = ["CPUExecutionProvider"]
        if device in ("auto", "cuda") and has_cuda:
            providers.insert(0, "CUDAExecutionProvider")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # idle threads sleep instead of spinning: the detector's and the keypoint net's
        # pools take turns on the same cores (spinning pools cost 4x on a busy 2-core CPU)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(p), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"model file {p}: ONNX Runtime cannot load it "
                             f"({type(exc).__name__}: {str(exc).strip()[:300]})") from exc
        used = self._session.get_providers()[0]
        self.description = f"onnxruntime {ort.__version__} {used}"
        self.provider = used
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"model file {p}: {len(inputs)} inputs; one image input needed")
        self.input_name = inputs[0].name
        self.input_shape = tuple(inputs[0].shape)
        self.output_names = tuple(o.name for o in self._session.get_outputs())

    def run(self, x: NDArray[np.float32]) -> list[NDArray[np.float32]]:
        return [np.asarray(o) for o in self._session.run(None, {self.input_name: x})]


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Detection:
    """Where the mouse is: ``centre`` (2,) px and ``size`` px (largest distance between
    its box keypoints), in the full frame; ``confidence`` 0..1 (with a verifier, the
    detector's peak x the verifier's probability); ``found`` when it is a mouse (the
    confidence reached the detector's threshold, the second look found it, or the
    verifier confirmed it: :meth:`Detector.locate`); ``from_second`` when the peak is
    the second detector network's (:meth:`Detector.judged`): a second look or a
    tracker's window around it asks that network again."""

    centre: NDArray[np.float64]
    size: float
    confidence: float
    found: bool
    from_second: bool = False


@dataclass(frozen=True)
class Keypoints:
    """One frame's keypoints: ``xy`` (K, 2) px in the full frame (NaN: not found),
    ``confidence`` (K,) 0..1, ``names`` (K,); ``detection`` (None without a detector)
    and the crop ``(centre x, centre y, side)`` px the network saw."""

    xy: NDArray[np.float32]
    confidence: NDArray[np.float32]
    names: tuple[str, ...]
    detection: Detection | None
    crop: tuple[float, float, float]

    def with_cutoff(self, p_cutoff: float) -> Keypoints:
        """The same with ``xy`` NaN where ``confidence < p_cutoff``."""
        xy = self.xy.copy()
        xy[self.confidence < p_cutoff] = np.nan
        return Keypoints(xy, self.confidence, self.names, self.detection, self.crop)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _sigmoid(x: NDArray[np.float32]) -> NDArray[np.float32]:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -30, 30))), np.float32)


def decode_heatmaps(heatmaps: NDArray[np.float32], offsets: NDArray[np.float32] | None,
                    spec: OutputSpec) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Peaks of ``heatmaps`` (K, h, w) refined by ``offsets`` (2K, h, w), or by a
    quadratic fit around the peak when there are none -> xy (K, 2) input px and
    confidence (K,)."""
    k, h, w = heatmaps.shape
    flat = heatmaps.reshape(k, -1)
    idx = flat.argmax(axis=1)
    iy, ix = np.divmod(idx, w)
    peak = flat[np.arange(k), idx]
    conf = _sigmoid(peak) if spec.activation == "sigmoid" else np.clip(peak, 0, 1)
    if offsets is not None:
        o = offsets.reshape(k, 2, h, w) if spec.offset_order == "xy" else \
            offsets.reshape(2, k, h, w).transpose(1, 0, 2, 3)
        dx = o[np.arange(k), 0, iy, ix]
        dy = o[np.arange(k), 1, iy, ix]
    else:
        def fit(a: NDArray[Any], b: NDArray[Any], c: NDArray[Any]) -> NDArray[Any]:
            den = a - 2 * b + c
            return np.where(np.abs(den) > 1e-9, np.clip(0.5 * (a - c) / np.where(
                np.abs(den) > 1e-9, den, 1.0), -0.5, 0.5), 0.0)
        hm = np.pad(heatmaps, ((0, 0), (1, 1), (1, 1)), mode="edge")
        r = np.arange(k)
        dx = fit(hm[r, iy + 1, ix], hm[r, iy + 1, ix + 1], hm[r, iy + 1, ix + 2])
        dy = fit(hm[r, iy, ix + 1], hm[r, iy + 1, ix + 1], hm[r, iy + 2, ix + 1])
        spec = OutputSpec(**{**spec.__dict__, "offset_scale": spec.stride})
    x = ix * spec.stride + spec.grid_offset + dx * spec.offset_scale
    y = iy * spec.stride + spec.grid_offset + dy * spec.offset_scale
    return np.stack([x, y], axis=1).astype(np.float32), conf.astype(np.float32)


def unturn(xy: NDArray[Any], turns: int, side: int) -> NDArray[Any]:
    """Keypoints ``xy`` (K, 2) px found in a ``side`` x ``side`` crop turned by
    ``np.rot90(crop, turns)`` (quarter turns counter-clockwise, 0-3), in the crop as
    cut."""
    if turns % 4 == 0:
        return xy
    x, y, last, k = xy[:, 0], xy[:, 1], side - 1, turns % 4
    back = (last - y, x) if k == 1 else (last - x, last - y) if k == 2 else (y, last - x)
    return np.stack(back, axis=1).astype(xy.dtype)


def combine_views(xy: NDArray[Any], confidence: NDArray[Any], agree: float = TURN_AGREE
                  ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """One answer from V views of a crop (:data:`TURN_AGREE`): ``xy`` (V, K, 2) px in the
    crop as cut and ``confidence`` (V, K) -> (K, 2) px and (K,). Per keypoint, the views
    within ``agree`` px of the medoid (the view with the least summed distance to the
    others) are averaged, weighted by their confidence; the confidence is the mean of
    all views'. NaN views are left out."""
    v, k = confidence.shape
    if xy.shape != (v, k, 2):
        raise ValueError(f"combine_views: xy {xy.shape} and confidence {confidence.shape} "
                         "must be (V, K, 2) and (V, K)")
    pts = np.asarray(xy, np.float64)
    dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1)  # (V, V, K)
    dist = np.where(np.isfinite(dist), dist, np.inf)
    medoid = pts[dist.sum(axis=1).argmin(axis=0), np.arange(k)]  # (K, 2)
    near = np.linalg.norm(pts - medoid[None], axis=-1) <= agree  # (V, K); NaN: False
    weight = np.where(near, np.maximum(confidence, 1e-6), 0.0)
    total = weight.sum(axis=0)
    out = np.einsum("vk,vkc->kc", weight, np.where(near[..., None], pts, 0.0))
    out = out / np.where(total > 0, total, 1.0)[:, None]
    out[total <= 0] = np.nan
    return out.astype(np.float32), np.asarray(confidence.mean(axis=0), np.float32)


# ---------------------------------------------------------------------------- networks


def normalise(img: NDArray[np.uint8], spec: InputSpec) -> NDArray[np.float32]:
    """uint8 (H, W[, C]) -> float32 (1, C, H, W) or (1, H, W, C) as ``spec`` says."""
    x = img.astype(np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    mean = np.asarray(spec.mean, np.float32)
    std = np.asarray(spec.std, np.float32)
    x = (x - mean) * (1.0 / std)
    if spec.layout == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None])


def check_image(frame: object) -> NDArray[np.uint8]:
    """``frame`` as uint8 (H, W) grey or (H, W, 3) BGR, (H, W, 1) squeezed to (H, W).

    Raises
    ------
    InputError
        Another dtype or shape, or a side under 8 px.
    """
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or not (
            frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3))):
        what = f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray) else type(frame)
        raise InputError(f"keypoints: frame {what}: uint8 (H, W) grey or (H, W, 3) BGR needed")
    if frame.shape[0] < 8 or frame.shape[1] < 8:
        raise InputError(f"keypoints: frame {frame.shape[1]}x{frame.shape[0]}: too small")
    return frame[:, :, 0] if frame.ndim == 3 and frame.shape[2] == 1 else frame


class Detector:
    """Finds the mouse in a whole frame (any size), or in a square window of it, at the
    cost of a 160 x 128 image."""

    def __init__(self, spec: DetectorSpec | str | Path, *, device: str = "auto",
                 threads: int = 0, backend: Backend | None = None) -> None:
        self.spec = spec if isinstance(spec, DetectorSpec) else load_detector_spec(spec)
        self.backend = backend or OnnxBackend(self.spec.onnx, device=device, threads=threads)
        second = self.spec.second_detector
        self.second_net = (OnnxBackend(second, device=device, threads=threads)
                           if second is not None else None)
        for what, path, net in (("detector", self.spec.onnx, self.backend),
                                ("second detector", second, self.second_net)):
            if net is not None and len(net.output_names) != 2:
                raise ModelError(f"{what} {path}: 2 outputs (centre, box) needed, it has "
                                 f"{len(net.output_names)}")
        self.verifier = (OnnxBackend(self.spec.verifier, device=device, threads=threads)
                         if self.spec.verifier is not None else None)

    def __call__(self, frame: NDArray[np.uint8],
                 window: tuple[float, float, float] | None = None, *,
                 within: float | None = None, net: DetectorNet = "first") -> Detection:
        """The most confident of :meth:`candidates` (found or not)."""
        return self.candidates(frame, window, within=within, net=net)[0]

    def candidates(self, frame: NDArray[np.uint8],
                   window: tuple[float, float, float] | None = None, *,
                   within: float | None = None, count: int = 1,
                   floor: float = 0.0, net: DetectorNet = "first") -> list[Detection]:
        """Detect in ``frame`` (H, W) grey or (H, W, 3) BGR uint8: the whole frame
        letterboxed, or the square ``window`` (centre x, centre y, side) px resampled into
        the input's left 128 x 128 px (a small mouse is seen larger there). ``within``
        (px): only a mouse whose centre lies that close to the window's centre counts.
        ``net``: which detector network's peaks: ``first``, ``second`` (the first where
        there is none) or ``both`` (``count`` of each, the first's first; the frame is
        resampled once)."""
        if net not in DETECTOR_NETS:
            raise ValueError(f"net={net!r}: one of {', '.join(DETECTOR_NETS)}")
        frame = check_image(frame)
        h = DETECTOR_INPUT[1]
        if window is None:
            small, s = letterbox(frame)
            to_src = np.array([[1 / s, 0.0, 0.5 / s - 0.5], [0.0, 1 / s, 0.5 / s - 0.5]])
            cols = DETECTOR_INPUT[0]
        else:
            cx, cy, side = window
            small = np.zeros((h, DETECTOR_INPUT[0]), np.uint8)
            small[:, :h] = cut_crop(frame, np.array([cx, cy]), side, h)
            to_src = crop_matrix(np.array([cx, cy]), side, h)
            cols = h
        x = normalise(small, self.spec.input)
        second = self.second_net
        nets = [(self.backend, False)] if net == "first" or second is None else \
            [(second, True)] if net == "second" else [(self.backend, False), (second, True)]
        st = self.spec.stride
        g = (st - 1) / 2.0
        out = []
        for backend, from_second in nets:
            centre, box = backend.run(x)
            c = centre[0, 0, :, :max(1, int(cols // st))]
            if window is not None and within is not None:
                r = within * h / window[2] / st  # cells
                gy, gx = np.ogrid[:c.shape[0], :c.shape[1]]
                o = (h / st - 1) / 2
                c = np.where((gx - o) ** 2 + (gy - o) ** 2 <= r * r, c, -np.inf)
            cells = [np.unravel_index(int(c.argmax()), c.shape)]
            if count > 1:  # the other local maxima, most confident first
                peak = (c >= cv2.dilate(c.astype(np.float32), np.ones((3, 3), np.uint8))) \
                    & (c >= _logit(floor))
                ys, xs = np.nonzero(peak)
                order = np.argsort(-c[ys, xs])
                cells += [(ys[k], xs[k]) for k in order if (ys[k], xs[k]) != cells[0]]
            for iy, ix in cells[:count]:
                conf = float(_sigmoid(c[iy, ix]))
                xy = np.array([(ix + box[0, 0, iy, ix]) * st + g,
                               (iy + box[0, 1, iy, ix]) * st + g])
                size = float(np.exp(np.clip(box[0, 2, iy, ix], -5, 8)) * st)
                full = to_src[:, :2] @ xy + to_src[:, 2]
                out.append(Detection(full.astype(np.float64), size * float(to_src[0, 0]),
                                     conf, conf >= self.spec.threshold, from_second))
        return out

    def mouse_probability(self, frame: NDArray[np.uint8], det: Detection) -> float:
        """The verifier's belief (0..1) that ``det`` in ``frame`` is a mouse; 1 without a
        verifier."""
        return self.mouse_probabilities(frame, [det])[0]

    def mouse_probabilities(self, frame: NDArray[np.uint8], dets: Sequence[Detection],
                            *, one_view: bool = False) -> list[float]:
        """:meth:`mouse_probability` of each of ``dets``: with ``verifier_views`` 8, the
        mean over each crop's turns and mirrors (``one_view``: the crop as cut only). One
        verifier run for all of them where its batch size is free, one per view
        otherwise."""
        if self.verifier is None or not dets:
            return [1.0] * len(dets)
        spec = self.spec
        frame = check_image(frame)
        views = []
        for det in dets:
            crop = verifier_crop(frame, det.centre, det.size, px=spec.verifier_px,
                                 scale=spec.verifier_scale)
            views.append(crop)
            if spec.verifier_views == VERIFIER_VIEWS and not one_view:
                turns = [crop, *(np.rot90(crop, k) for k in (1, 2, 3))]
                views += turns[1:] + [t[:, ::-1] for t in turns]
        x = np.concatenate([normalise(v, spec.input) for v in views])
        if isinstance(self.verifier.input_shape[0], int):  # a batch of one only
            logits = np.concatenate([self.verifier.run(x[i:i + 1])[0].ravel()
                                     for i in range(len(x))])
        else:
            logits = self.verifier.run(x)[0].ravel()
        p = _sigmoid(logits.astype(np.float32))
        return [float(v) for v in p.reshape(len(dets), -1).mean(axis=1)]

    def locate(self, frame: NDArray[np.uint8], *, refine: float = WINDOW_SIZES
               ) -> Detection:
        """Detect in the whole ``frame``: the first of :meth:`judged`, then
        :meth:`refined` by a second look ``refine`` mouse sizes wide."""
        return self.refined(frame, self.judged(frame)[0], refine=refine)

    def refined(self, frame: NDArray[np.uint8], first: Detection, *,
                refine: float = WINDOW_SIZES) -> Detection:
        """``first`` (a whole-frame answer) looked at again, with ``refine`` > 0, in a
        window ``refine`` mouse sizes wide around it, where the mouse is seen at about the
        scale the detector was trained on (a small mouse is more than a few cells of the
        whole frame's letterbox). When the window finds the mouse within half a mouse
        size of ``first``, the two answers' mean is returned. A whole-frame peak a little
        under the threshold (:data:`CANDIDATE`) gets the second look too, and is found
        when the window finds it. With a verifier, an answer it rejects stays rejected."""
        if self.verifier is not None and not first.found:
            return first
        if refine <= 0 or first.confidence < self.spec.threshold * CANDIDATE:
            return first
        side = max(MIN_WINDOW, refine * first.size)
        second = self(frame, (float(first.centre[0]), float(first.centre[1]), side),
                      net="second" if first.from_second else "first")
        near = float(np.linalg.norm(second.centre - first.centre)) <= 0.5 * first.size
        if not (second.found and near):
            return first
        # two scales, one answer: their mean is steadier than either (the window alone
        # was better on real rigs, worse on rendered frames with a cut-off mouse)
        conf = first.confidence if self.verifier else max(first.confidence, second.confidence)
        return Detection(0.5 * (first.centre + second.centre), 0.5 * (first.size + second.size),
                         conf, True, first.from_second)

    def judged(self, frame: NDArray[np.uint8]) -> list[Detection]:
        """The whole frame's answers, most confident first (the first network's on a tie).

        Without a verifier: the first network's highest peak. With one: the
        :data:`VERIFY_PEAKS` highest peaks (down to :data:`VERIFY_FLOOR`) of each detector
        network where there are two, each with the detector confidence x the verifier's
        probability as its confidence, found when the probability reaches
        :data:`MOUSE_PROBABILITY` and the product :data:`VERIFIED` x the threshold.
        Low peaks count: a detector trained on one mouse per frame often leaves the
        mouse only a low peak when an object took the highest, or none, where the two
        merge into one peak beside a dark object; the ``second_detector``, trained with
        dark objects beside the mouse, has its peak on the mouse there."""
        if self.verifier is None:
            return [self(frame)]
        cands = self.candidates(frame, count=VERIFY_PEAKS, floor=VERIFY_FLOOR, net="both")
        return self._weighed(frame, cands)

    def _weighed(self, frame: NDArray[np.uint8], peaks: Sequence[Detection]
                 ) -> list[Detection]:
        """``peaks`` with the verifier's word: each one's confidence x its mouse
        probability as its confidence, found by :meth:`_is_mouse`; most confident first
        (stable: the first network's on a tie)."""
        probs = self.mouse_probabilities(frame, peaks)
        weighed = [Detection(c.centre, c.size, c.confidence * q,
                             self._is_mouse(q, c.confidence * q), c.from_second)
                   for c, q in zip(peaks, probs, strict=True)]
        return sorted(weighed, key=lambda d: -d.confidence)

    @property
    def scans(self) -> bool:
        """Whether :meth:`scan` looks at all: with a verifier, unless the detector's YAML
        says ``scan: false``."""
        return self.verifier is not None and self.spec.scan

    def scan(self, frame: NDArray[np.uint8]) -> list[Detection]:
        """``frame`` searched window by window (:func:`scan_windows`), for a mouse the
        whole frame's letterbox shows too small or too faint to leave a peak: in each
        window, the :data:`SCAN_PEAKS` highest peaks (down to :data:`VERIFY_FLOOR`) of
        each detector network, sifted by the verifier's first view (:data:`SCAN_SIFT`),
        then judged by it (in one batch) as :meth:`judged` judges a peak. The ones
        judged a mouse, most confident first; none without a verifier (a network alone
        takes too many blank windows for a mouse), and none where the detector's YAML
        says ``scan: false``. About 30 ms on a 640 x 480 frame and 50 ms on a 2048 x
        2048 one on this project's 2-core CPU: for frames where :meth:`judged` found
        nothing."""
        if not self.scans:
            return []
        frame = check_image(frame)
        peaks = [c for w in scan_windows(frame.shape[1], frame.shape[0])
                 for c in self.candidates(frame, w, count=SCAN_PEAKS, floor=VERIFY_FLOOR,
                                          net="both")
                 if c.confidence >= VERIFY_FLOOR]
        if self.spec.verifier_views == VERIFIER_VIEWS:  # a first look, one view each
            sift = self.mouse_probabilities(frame, peaks, one_view=True)
            peaks = [c for c, q in zip(peaks, sift, strict=True) if q >= SCAN_SIFT]
        return [d for d in self._weighed(frame, peaks) if d.found]

    def confirmed(self, frame: NDArray[np.uint8], det: Detection) -> Detection:
        """``det`` (found) judged by the verifier as :meth:`judged` judges a peak: its
        confidence becomes the product with the mouse probability, and it stays found
        only when that passes. As it was without a verifier or when not found."""
        if self.verifier is None or not det.found:
            return det
        p = self.mouse_probability(frame, det)
        return replace(det, confidence=det.confidence * p,
                       found=self._is_mouse(p, det.confidence * p))

    def _is_mouse(self, probability: float, score: float) -> bool:
        return probability >= MOUSE_PROBABILITY and score >= VERIFIED * self.spec.threshold


#: What the keypoint network says of one crop: keypoints (K, 2) px of the frame,
#: confidences (K,) and the crop (centre x, centre y, side) px.
_CropAnswer = tuple[NDArray[np.float64], NDArray[np.float32], tuple[float, float, float]]


class KeypointModel:
    """The 2D stage: detector (when the model has one), crop, network, decoding.

    >>> model = KeypointModel()                      # the shipped default  # doctest: +SKIP
    >>> kp = model(frame)                            # frame: (H, W[, 3]) uint8
    >>> kp.xy, kp.confidence                         # (14, 2) px, (14,)

    ``roi`` (x, y, width, height) limits the search to a part of the frame (the arena),
    without copying it. Raises :class:`ModelError` at construction for a missing,
    corrupt or inconsistent model.
    """

    def __init__(self, model: str | Path | ModelSpec | None = None, *, device: str = "auto",
                 threads: int = 0, view: str = "top") -> None:
        self.spec = (model if isinstance(model, ModelSpec)
                     else load_model_spec(model, view=view))
        self.backend = OnnxBackend(self.spec.onnx, device=device, threads=threads)
        self.detector = (Detector(self.spec.detector, device=device, threads=threads)
                         if self.spec.crop == "detector" and self.spec.detector else None)
        out = self.spec.output
        names = self.backend.output_names
        need = 2 if out.kind == "heatmap_offset" else 1
        if len(names) < need:
            raise ModelError(f"model {self.spec.onnx}: output kind {out.kind} needs {need} "
                             f"outputs, the network has {list(names)}")
        self._heat = names.index(out.heatmap) if out.heatmap in names else 0
        self._off = names.index(out.offset) if out.offset in names else 1
        self._check_shapes()
        #: the tail crop's keypoint indices: centre, tail base, lumbar spine, replaceable
        self._tail: tuple[int, int, int, NDArray[np.intp]] | None = None
        if self.spec.tail_crop:
            wanted = (TAIL_CROP, "tail_base", "lumbar_spine", *TAIL_KEYPOINTS)
            if missing := [n for n in wanted if n not in self.names]:
                raise ModelError(f"model {self.spec.path}: tail_crop: true needs the "
                                 f"keypoints {', '.join(missing)}")
            i = self.names.index
            self._tail = (i(TAIL_CROP), i("tail_base"), i("lumbar_spine"),
                          np.array([i(n) for n in TAIL_KEYPOINTS], np.intp))

    @property
    def names(self) -> tuple[str, ...]:
        return self.spec.output_names

    @property
    def description(self) -> str:
        """Model name and what runs it, for the start-up log."""
        det = f" + detector on {self.detector.backend.description}" if self.detector else ""
        return f"{self.spec.name} on {self.backend.description}{det}"

    def _check_shapes(self) -> None:
        i = self.spec.input
        shape = (1, i.channels, i.height, i.width) if i.layout == "NCHW" else \
            (1, i.height, i.width, i.channels)
        try:
            outs = self.backend.run(np.zeros(shape, np.float32))
        except Exception as exc:
            raise ModelError(f"model {self.spec.onnx}: does not run on a {shape} input as "
                             f"{self.spec.path} describes ({str(exc).strip()[:200]})") from exc
        k = len(self.spec.keypoints)
        out = self.spec.output
        ch = 1 if out.layout == "NCHW" else -1
        if out.kind == "keypoints":
            ok = outs[0].size == 3 * k
        else:
            hm = outs[self._heat]
            ok = hm.ndim == 4 and hm.shape[0] == 1 and hm.shape[ch] == k
            if ok and out.kind == "heatmap_offset":
                off = outs[self._off]
                ok = off.ndim == 4 and off.shape[ch] == 2 * k and \
                    off.shape[2 if ch == 1 else 1] == hm.shape[2 if ch == 1 else 1]
        if not ok:
            raise ModelError(f"model {self.spec.onnx}: outputs {[o.shape for o in outs]} do "
                             f"not match {k} keypoints and kind {self.spec.output.kind}")

    def __call__(self, frame: NDArray[np.uint8],
                 roi: tuple[int, int, int, int] | None = None, *,
                 tracker: Callable[[NDArray[np.uint8]], Detection] | None = None
                 ) -> Keypoints:
        """Keypoints of the mouse in ``frame`` (H, W) grey or (H, W, 3) BGR uint8.

        ``tracker`` (a :class:`~.tracking.MouseTracker` of this model's detector) finds
        the mouse instead of the detector on the whole frame: in a video, pass the same
        tracker for each frame, in order. Without one, the frame's answers judged a
        mouse contend, and a frame where none is a mouse is scanned window by window
        (:meth:`_mouse`)."""
        frame = check_image(frame)
        ox = oy = 0
        if roi is not None and roi[2] > 0 and roi[3] > 0:
            ox, oy = max(0, int(roi[0])), max(0, int(roi[1]))
            frame = frame[oy:oy + int(roi[3]), ox:ox + int(roi[2])]
            if frame.shape[0] < 8 or frame.shape[1] < 8:
                raise InputError(f"keypoints: roi {roi} leaves {frame.shape[1]}x"
                                 f"{frame.shape[0]} px of the frame")
        spec = self.spec
        inp = spec.input
        det = None
        shift = np.array([ox, oy], np.float64)
        if self.detector is not None:
            det, answer = self._mouse(frame, tracker)
            if answer is None:
                return self._no_mouse(det, shift)
            xy, conf, window = answer
            if self._tail is not None:
                xy, conf = self._tail_crop(frame, det.size, xy, conf)
        else:
            h, w = frame.shape[:2]
            crop = cv2.resize(frame, (inp.width, inp.height), interpolation=cv2.INTER_AREA)
            sx, sy = w / inp.width, h / inp.height
            to_src = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5]])
            xy, conf = self._run(crop, to_src)
            window = ((w - 1) / 2.0, (h - 1) / 2.0, float(max(w, h)))
        full = (xy + shift).astype(np.float32)
        if det is not None:
            det = replace(det, centre=det.centre + shift)
        window = (window[0] + ox, window[1] + oy, window[2])
        return Keypoints(full, conf, self.names, det, window)

    def _mouse(self, frame: NDArray[np.uint8], tracker: Any
               ) -> tuple[Detection, _CropAnswer | None]:
        """The detection and its crop's answer (None: no mouse) in ``frame``: the
        tracker's, or the frame's own (:meth:`_contenders`); when several answers contend,
        the one the keypoint network settles on (:meth:`_settled`); then
        :meth:`_checked`. Where none is a mouse, the window scan's (:meth:`_scanned`;
        with a tracker, on the frames its ``may_scan`` allows, and the track then follows
        the mouse it found)."""
        if tracker is not None:
            det = tracker(frame)
            contenders = list(getattr(tracker, "contenders", None) or [det])
        else:
            contenders = self._contenders(frame)
            det = contenders[0]
        if det.found:
            answer = self._in_crop(frame, det.centre, det.size)
            if len(contenders) > 1:  # which is a mouse? the crops' keypoints say
                det, answer = self._settled(frame, contenders, answer, tracker)
            det, checked = self._checked(frame, det, answer, tracker)
            if checked is not None:
                return det, checked
        if tracker is not None and not getattr(tracker, "may_scan", lambda: True)():
            return det, None
        scanned = self._scanned(frame)
        if scanned is None:
            return det, None
        if (settle := getattr(tracker, "settle", None)) is not None:
            settle(scanned[0])
        return scanned

    def _checked(self, frame: NDArray[np.uint8], det: Detection, answer: _CropAnswer,
                 tracker: Any, *, wider: bool = False
                 ) -> tuple[Detection, _CropAnswer | None]:
        """``answer``, the crop of ``det``, checked: with fewer than :data:`FEW_KEYPOINTS`
        keypoints (or with ``wider``: a scan's window may have shown a part of the mouse
        as a small one), cut :data:`WIDER` again (a tracker's crops then too); with fewer
        than :data:`MIN_KEYPOINTS`, no mouse (None, ``det`` not found; a tracker searches
        the next frame whole)."""
        conf = answer[1]
        if wider or np.count_nonzero(conf >= P_CUTOFF) < FEW_KEYPOINTS:
            wide = self._in_crop(frame, det.centre, WIDER * det.size)
            size = _spanned(wide[0], wide[1], self.names)
            if wide[1].sum() > conf.sum() + WIDER_GAIN and size > WIDER_LARGER * det.size:
                answer, conf = wide, wide[1]
                det = replace(det, size=size)
                if (widen := getattr(tracker, "widen", None)) is not None:
                    widen(size)  # the track's next crops are cut at that size
        if np.count_nonzero(conf >= P_CUTOFF) < MIN_KEYPOINTS:
            if (lose := getattr(tracker, "lose", None)) is not None:
                lose()  # the next frame is searched whole
            return replace(det, found=False), None
        return det, answer

    def _contenders(self, frame: NDArray[np.uint8]) -> list[Detection]:
        """A frame on its own: the whole frame's answer (as :meth:`Detector.locate`
        gives it) and the other answers judged a mouse, each farther from every answer
        before it than the mean of their sizes (the two could not overlap), with their
        second looks. Without a track to tell a mouse from the cup beside it, their
        crops' keypoints do (:meth:`_settled`)."""
        assert self.detector is not None
        detector = self.detector
        judged = detector.judged(frame)
        kept = [judged[0]]
        for d in judged[1:]:
            if d.found and all(np.linalg.norm(d.centre - k.centre) > 0.5 * (d.size + k.size)
                               for k in kept):
                kept.append(d)
        return [detector.refined(frame, d) for d in kept]

    def _scanned(self, frame: NDArray[np.uint8]) -> tuple[Detection, _CropAnswer] | None:
        """The first of the window scan's :data:`SCAN_TRIES` most confident answers
        (:meth:`Detector.scan`, each with its second look) whose crop's keypoint
        confidences sum to :data:`SCAN_EVIDENCE` and pass :meth:`_checked`, with that
        crop's answer; None when none does."""
        assert self.detector is not None
        for det in self.detector.scan(frame)[:SCAN_TRIES]:
            det = self.detector.refined(frame, det)
            answer = self._in_crop(frame, det.centre, det.size)
            if float(answer[1].sum()) >= SCAN_EVIDENCE:
                det, checked = self._checked(frame, det, answer, None, wider=True)
                if checked is not None:
                    return det, checked
        return None

    def _settled(self, frame: NDArray[np.uint8], contenders: Sequence[Detection],
                 first: _CropAnswer, tracker: Any) -> tuple[Detection, _CropAnswer]:
        """The ``contenders`` (the tracker's or the frame's answer first, whose crop gave
        ``first``) judged by the keypoint network: where one crop's confidences sum
        :data:`SETTLE_GAIN` above every other's, the contest is settled on it (a tracker
        is told); else the first answer."""
        crops = [first, *(self._in_crop(frame, d.centre, d.size) for d in contenders[1:])]
        sums = [float(c[1].sum()) for c in crops]
        k = int(np.argmax(sums))
        if all(sums[k] >= v + SETTLE_GAIN for i, v in enumerate(sums) if i != k):
            if tracker is not None:
                tracker.settle(contenders[k])
            return contenders[k], crops[k]
        return contenders[0], first

    def _tail_crop(self, frame: NDArray[np.uint8], size: float, xy: NDArray[np.float64],
                   conf: NDArray[np.float32]
                   ) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
        """The first crop's keypoints ``xy`` (K, 2) px and confidences ``conf`` (K,), with
        the tail keypoints of a crop around the tail (:data:`TAIL_CROP`) where surer; as
        they were where neither the tail's middle nor the tail base and lumbar spine were
        found."""
        assert self._tail is not None
        mid, base, lumbar, replaceable = self._tail
        if conf[mid] >= P_CUTOFF:
            centre = xy[mid].astype(np.float64)
        elif conf[base] >= P_CUTOFF and conf[lumbar] >= P_CUTOFF:
            axis = xy[base] - xy[lumbar]
            centre = xy[base] + TAIL_REACH * size * axis / max(float(np.hypot(*axis)), 1e-6)
        else:
            return xy, conf
        txy, tconf, _ = self._in_crop(frame, centre, size, flip=TAIL_FLIP, turn=TAIL_TURN)
        better = replaceable[tconf[replaceable] > conf[replaceable]]
        xy, conf = xy.copy(), conf.copy()
        xy[better], conf[better] = txy[better], tconf[better]
        return xy, conf

    def _no_mouse(self, det: Detection, shift: NDArray[np.float64]) -> Keypoints:
        """The answer where ``det`` is no mouse: every keypoint NaN, with the detection's
        confidence."""
        k = len(self.spec.keypoints)
        return Keypoints(np.full((k, 2), np.nan, np.float32),
                         np.full(k, det.confidence, np.float32), self.names,
                         replace(det, centre=det.centre + shift), (float("nan"),) * 3)

    def _in_crop(self, frame: NDArray[np.uint8], centre: NDArray[np.float64], size: float,
                 *, flip: bool = True, turn: bool = True) -> _CropAnswer:
        """Keypoints (K, 2) px of ``frame`` and confidences (K,) from the crop around a
        mouse of ``size`` px at ``centre``, and that crop (centre x, centre y, side);
        ``flip``, ``turn``: with the model's flip and turn tests, where it has them."""
        side = max(MIN_CROP, self.spec.crop_scale * size)
        width = self.spec.input.width
        crop = cut_crop(frame, centre, side, width, grey=self.spec.input.channels == 1)
        xy, conf = self._run(crop, crop_matrix(centre, side, width), flip=flip, turn=turn)
        return xy, conf, (float(centre[0]), float(centre[1]), side)

    def crop_keypoints(self, crop: NDArray[np.uint8]
                       ) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
        """The network alone, once (no flip or turn test), on ``crop``: a crop already
        cut at the input's size, grey or BGR uint8. Keypoints (K, 2) in crop px and
        confidences (K,); what training scores a network by."""
        return self._run(crop, np.eye(2, 3), flip=False, turn=False)

    def _run(self, crop: NDArray[np.uint8], to_src: NDArray[np.float64], *,
             flip: bool = True, turn: bool = True
             ) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
        """The network on ``crop`` (resized to its input; BGR or grey), and on the views
        the model's ``flip_test`` (mirrored; with ``flip``) and ``turn_test`` (quarter
        turns; with ``turn``) ask for: keypoints (K, 2) px mapped by ``to_src`` (2, 3),
        confidences (K,)."""
        spec = self.spec
        inp = spec.input
        if inp.channels == 1 and crop.ndim == 3:
            crop = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
        if inp.channels == 3:
            if crop.ndim == 2:
                crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
            if inp.colour == "rgb":
                crop = crop[:, :, ::-1]
        turns = (0, 1, 2, 3) if spec.turn_test and turn else (0,)
        partner = spec.flip_index if spec.flip_test and flip else None
        xys, confs = [], []
        for k in turns:
            turned = np.rot90(crop, k) if k else crop
            xy, conf = self._decode(self.backend.run(normalise(turned, inp)))
            xys.append(unturn(xy, k, inp.width))
            confs.append(conf)
            if partner is not None:
                # mirror the crop, run again, mirror back and swap left/right: the mean of
                # both halves the network's left-right-asymmetric errors
                xy2, conf2 = self._decode(self.backend.run(normalise(turned[:, ::-1], inp)))
                xy2 = xy2[partner]
                xy2[:, 0] = inp.width - 1 - xy2[:, 0]
                xys.append(unturn(xy2, k, inp.width))
                confs.append(conf2[partner])
        if len(xys) == 1:
            xy, conf = xys[0], confs[0]
        elif len(xys) == 2:
            xy, conf = 0.5 * (xys[0] + xys[1]), 0.5 * (confs[0] + confs[1])
        else:
            xy, conf = combine_views(np.stack(xys), np.stack(confs))
        return xy @ to_src[:, :2].T + to_src[:, 2], conf

    def _decode(self, outs: list[NDArray[np.float32]]
                ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        out = self.spec.output
        k = len(self.spec.keypoints)
        if out.kind == "keypoints":
            a = outs[0].reshape(k, 3)
            return a[:, :2].astype(np.float32), np.clip(a[:, 2], 0, 1).astype(np.float32)
        hm = outs[self._heat][0]
        off = outs[self._off][0] if out.kind == "heatmap_offset" else None
        if out.layout == "NHWC":
            hm = hm.transpose(2, 0, 1)
            off = off.transpose(2, 0, 1) if off is not None else None
        return decode_heatmaps(hm, off, out)
