"""Monocular depth of the mouse: a small network on the mouse crop, made metric by the
arena calibration.

What the network sees is the crop the 2D stage cuts (:data:`CROP_PX` square,
:data:`~mouse_lifter_ros.core.keypoints.CROP_SCALE` body sizes wide around the detected
mouse). It predicts, per output cell, whether the mouse is there and the *height of its
surface above the floor* (in units of :data:`DEPTH_UNIT` metres): a quantity the crop
shows (a mouse's shape, shading and size vary little), unlike its distance from the
camera. The calibration knows where the floor is, so it anchors the rest: each image
pixel's depth is where its ray meets the plane at that height above the floor
(:meth:`ArenaCalibration.depth_at_height`).

The result (:class:`DepthMap`) covers the crop's window clipped to the image, at full
image resolution: camera-frame z in metres of the mouse's surface (as a ``32FC1`` depth
image), NaN off the mouse (REP 118: no reading). A keypoint whose neighbourhood the
mask misses then gets no reading rather than the floor's depth (a rearing head whose
mask was lost to its shadow read as lying on the floor).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.arena import ArenaCalibration
from mouse_lifter_ros.core.keypoints import (
    MIN_CROP,
    MODELS_DIR,
    Detection,
    Detector,
    InputSpec,
    ModelError,
    OnnxBackend,
    check_image,
    cut_crop,
    normalise,
    parse_input_spec,
    read_model_yaml,
)
from mouse_lifter_ros.core.views import view_problem

#: Side of the network's square input crop, pixels.
CROP_PX: Final = 160
#: The network's height output times this is the height over the floor, metres.
DEPTH_UNIT: Final = 0.01


#: The shipped depth model of each camera view (:data:`~.views.VIEWS`).
SHIPPED_DEPTH_MODELS: Final[dict[str, Path]] = {
    "top": MODELS_DIR / "depth" / "default.yaml",
    "bottom": MODELS_DIR / "depth_bottom" / "default.yaml"}
DEFAULT_DEPTH_MODEL: Final = SHIPPED_DEPTH_MODELS["top"]


@dataclass(frozen=True)
class DepthSpec:
    """A depth model description (``models/depth/default.yaml``): the network, the
    detector that places the crop, the input, the two outputs' names, their stride
    (crop px per cell), the height ``unit`` (metres per output unit), the crop's side
    in body sizes and the mouse-logit threshold."""

    path: Path
    name: str
    onnx: Path
    detector: Path
    input: InputSpec
    height: str
    mask: str
    stride: int
    unit: float
    crop_scale: float
    mask_threshold: float
    view: str = "top"


def load_depth_spec(path: str | Path | None = None, *, view: str = "top") -> DepthSpec:
    """Read and check a depth model YAML (default: the shipped model of ``view``).

    Raises
    ------
    ModelError
        Naming the file and listing every problem: missing keys, wrong types, files
        that do not exist.
    """
    if path is None and (problem := view_problem(view)) is not None:
        raise ModelError(f"shipped depth model: {problem}")
    p = Path(path) if path is not None else SHIPPED_DEPTH_MODELS[view]
    d = read_model_yaml(p, "depth model")
    problems: list[str] = []
    spec_in = parse_input_spec(d.get("input"), problems)
    out = d.get("output")
    if not isinstance(out, dict):
        problems.append("'output' missing or not a mapping")
        out = {}
    files = {}
    for key in ("onnx", "detector"):
        value = d.get(key)
        if not isinstance(value, str) or not value:
            problems.append(f"{key!r} missing: the file name beside the YAML")
        elif not (p.parent / value).is_file():
            problems.append(f"{key} {(p.parent / value)}: no such file")
        files[key] = p.parent / str(value)

    def num(block: dict[str, Any], key: str, default: float | None, low: float) -> float:
        value = block.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
            problems.append(f"{key} {value!r}: a number >= {low:g} needed")
            return float(low)
        return float(value)

    stride = num(out, "stride", None, 1)
    unit = num(out, "unit", None, 1e-6)
    scale = num(d, "crop_scale", 1.6, 0.5)
    threshold = num(d, "mask_threshold", 0.0, -30.0)
    view = d.get("view", "top")
    if (problem := view_problem(view)) is not None:
        problems.append(problem)
    if spec_in.width != spec_in.height or spec_in.channels != 1:
        problems.append(f"input {spec_in.width}x{spec_in.height}x{spec_in.channels}: a square "
                        "grey crop needed")
    if problems:
        raise ModelError(f"depth model {p}: " + "; ".join(problems))
    return DepthSpec(path=p, name=str(d.get("name", p.stem)), onnx=files["onnx"],
                     detector=files["detector"], input=spec_in,
                     height=str(out.get("height", "height")), mask=str(out.get("mask", "mask")),
                     stride=int(stride), unit=unit, crop_scale=scale, mask_threshold=threshold,
                     view=str(view))


@dataclass(frozen=True)
class DepthMap:
    """The depth of one frame around the mouse.

    ``depth`` (h, w) float32: camera-frame z in metres of every pixel of ``roi``
    (x, y, w, h in the full image): the mouse's surface where ``mask`` (h, w) is set,
    NaN elsewhere (and where a pixel's ray misses the floor). ``height`` (h, w)
    float32: the surface's height over the floor, metres, 0 off the mouse. Empty (0 x 0,
    roi all zero) when no mouse was found.
    """

    depth: NDArray[np.float32]
    height: NDArray[np.float32]
    mask: NDArray[np.bool_]
    roi: tuple[int, int, int, int]
    detection: Detection

    @property
    def found(self) -> bool:
        return self.detection.found and self.depth.size > 0


class DepthModel:
    """Detector, crop, depth network and the calibration's floor: a metric depth map.

    >>> model = DepthModel(arena=load_arena("arena.yaml"))       # doctest: +SKIP
    >>> d = model(frame)                                          # (H, W[, 3]) uint8
    >>> d.depth, d.roi                                            # metres, x y w h

    Frames of another size than the calibration's use the calibration scaled to them.
    Raises :class:`ModelError` at construction for a missing, corrupt or inconsistent
    model.
    """

    def __init__(self, model: str | Path | DepthSpec | None = None, *,
                 arena: ArenaCalibration, device: str = "auto", threads: int = 0,
                 detector: Detector | None = None) -> None:
        self.spec = (model if isinstance(model, DepthSpec)
                     else load_depth_spec(model, view=arena.view))
        if arena.view != self.spec.view:
            raise ModelError(f"depth model {self.spec.path}: trained on {self.spec.view} views, "
                             f"but the arena calibration puts the camera "
                             f"{'under' if arena.view == 'bottom' else 'over'} the floor "
                             f"({arena.view} view)")
        self.backend = OnnxBackend(self.spec.onnx, device=device, threads=threads)
        self.detector = detector or Detector(self.spec.detector, device=device,
                                             threads=threads)
        self._arena = arena
        self._scaled: dict[tuple[int, int], ArenaCalibration] = {}
        names = self.backend.output_names
        missing = [n for n in (self.spec.height, self.spec.mask) if n not in names]
        n = self.spec.input.width
        try:
            outs = self.backend.run(np.zeros((1, 1, n, n), np.float32))
        except Exception as exc:
            raise ModelError(f"depth model {self.spec.onnx}: does not run on a (1, 1, {n}, "
                             f"{n}) input ({str(exc).strip()[:200]})") from exc
        cells = n // self.spec.stride
        if missing or any(o.shape != (1, 1, cells, cells) for o in outs[:2]):
            raise ModelError(f"depth model {self.spec.onnx}: outputs {list(names)} shaped "
                             f"{[o.shape for o in outs]}; {self.spec.height!r} and "
                             f"{self.spec.mask!r} of (1, 1, {cells}, {cells}) needed")
        self._ih = names.index(self.spec.height)
        self._im = names.index(self.spec.mask)

    @property
    def description(self) -> str:
        """Model name and what runs it, for the start-up log."""
        return (f"{self.spec.name} on {self.backend.description} + detector on "
                f"{self.detector.backend.description}")

    @property
    def arena(self) -> ArenaCalibration:
        """The calibration the depth is made metric with (settable)."""
        return self._arena

    @arena.setter
    def arena(self, arena: ArenaCalibration) -> None:
        if arena.view != self.spec.view:
            raise ModelError(f"depth model {self.spec.path}: trained on {self.spec.view} "
                             f"views, not {arena.view} views")
        self._arena = arena
        self._scaled = {}

    def _arena_for(self, width: int, height: int) -> ArenaCalibration:
        if (width, height) == (self._arena.width, self._arena.height):
            return self._arena
        arena = self._scaled.get((width, height))
        if arena is None:
            arena = self._scaled[(width, height)] = self._arena.scaled(width, height)
        return arena

    def __call__(self, frame: NDArray[np.uint8],
                 detection: Detection | None = None) -> DepthMap:
        """The depth map of ``frame`` (H, W) grey or (H, W, 3) BGR uint8 around the
        mouse (found by the detector unless ``detection`` is given)."""
        frame = check_image(frame)
        fh, fw = frame.shape[:2]
        det = detection if detection is not None else self.detector.locate(frame)
        if not det.found:
            empty = np.zeros((0, 0), np.float32)
            return DepthMap(empty, empty, np.zeros((0, 0), bool), (0, 0, 0, 0), det)
        arena = self._arena_for(fw, fh)
        spec = self.spec
        n = spec.input.width
        side = max(MIN_CROP, spec.crop_scale * det.size)
        crop = cut_crop(frame, det.centre, side, n)
        outs = self.backend.run(normalise(crop, spec.input))
        cx, cy = float(det.centre[0]), float(det.centre[1])
        x0, y0 = max(0, math.floor(cx - side / 2)), max(0, math.floor(cy - side / 2))
        x1, y1 = min(fw, math.ceil(cx + side / 2) + 1), min(fh, math.ceil(cy + side / 2) + 1)
        # image pixel u -> crop px (u - cx) * n / side + (n - 1) / 2 -> output cell
        # (crop px - (stride - 1) / 2) / stride
        a = n / (side * spec.stride)
        b = ((n - 1) / 2 - (spec.stride - 1) / 2) / spec.stride
        m = np.array([[a, 0.0, (x0 - cx) * a + b], [0.0, a, (y0 - cy) * a + b]])
        size = (x1 - x0, y1 - y0)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        h = cv2.warpAffine(outs[self._ih][0, 0], m, size, flags=flags,
                           borderMode=cv2.BORDER_REPLICATE)
        logit = cv2.warpAffine(outs[self._im][0, 0], m, size, flags=flags,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=-30.0)
        mask = logit > spec.mask_threshold
        height = np.where(mask, np.maximum(h, 0.0) * np.float32(spec.unit),
                          np.float32(0.0)).astype(np.float32)
        depth = arena.depth_at_height(arena.ray_grid()[y0:y1, x0:x1], height)
        depth = np.where(mask, depth, np.float32(np.nan)).astype(np.float32)
        return DepthMap(depth, height, mask, (x0, y0, *size), det)
