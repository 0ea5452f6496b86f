"""Training data of the depth network: synthetic mouse crops with their height maps.

Each sample is the crop the inference core cuts (:data:`~mouse_lifter_ros.core.depth.CROP_PX`
square, :data:`~mouse_lifter_ros.core.keypoints.CROP_SCALE` body sizes wide around the
mouse, with the detector's scale and centre jitter), rendered at the image's own
resolution and resampled, as :func:`~mouse_lifter_ros.core.keypoints.cut_crop` resamples a
real frame. The target is the height of the mouse's surface above the floor in every
crop pixel, metres; the inference core turns it into depth with the calibration.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.depth import CROP_PX
from mouse_lifter_ros.core.keypoints import CROP_SCALE
from mouse_lifter_ros.core.synth.render import ray_grid
from mouse_lifter_ros.core.views import view_suffix
from mouse_lifter_ros.training.data2d import (
    item_rng,
    render_window,
    rendered_cached,
    to_grey,
)


def depth_crop(args: tuple[int, int], view: str = "top"
               ) -> tuple[NDArray[np.uint8], NDArray[np.float16], NDArray[np.uint8]]:
    """Crop ``i`` of seed ``seed``, seen from ``view``: grey image, height of the surface
    the camera sees over the floor in metres (0 off the mouse) and mouse coverage
    (0..255), each (CROP_PX, CROP_PX)."""
    seed, i = args
    rng = item_rng(seed, i, 3)

    def window(centre: NDArray[Any], size: float) -> tuple[NDArray[Any], float, int]:
        # the detector's scale and centre jitter; rendered at the image's resolution
        side = CROP_SCALE * size * math.exp(float(np.clip(rng.normal(0, 0.12), -0.3, 0.3)))
        centre = centre + rng.normal(0, 0.07 * side, 2)
        return centre, side, int(np.clip(round(side), 48, 2 * CROP_PX))

    win, sample = render_window(rng, f"depth crop {i}", window, view)
    rays = ray_grid(win)
    z = sample.depth.astype(np.float64)
    pts = np.stack([rays.x * z, rays.y * z, z], axis=-1)
    height = (pts - win.t) @ win.R[:, 2]  # arena z of each surface point, metres
    mask = sample.mask.astype(np.float32)
    h = np.where(mask > 0, height, 0.0).astype(np.float32)
    size2 = (CROP_PX, CROP_PX)
    interp = cv2.INTER_AREA if win.width > CROP_PX else cv2.INTER_LINEAR
    img = cv2.resize(to_grey(sample.image), size2, interpolation=interp)
    cover = cv2.resize(mask, size2, interpolation=interp)
    hm = cv2.resize(h * mask, size2, interpolation=interp)
    h_out = np.where(cover > 1e-3, hm / np.maximum(cover, 1e-3), 0.0)
    return (img, h_out.astype(np.float16),
            np.clip(cover * 255.0 + 0.5, 0, 255).astype(np.uint8))


def synth_depth_crops(count: int, seed: int, *, view: str = "top", workers: int = 2,
                      cache: Path | None = None) -> dict[str, NDArray[Any]]:
    """``count`` crops of :func:`depth_crop` seen from ``view``, cached as ``.npz``."""
    return rendered_cached(functools.partial(depth_crop, view=view),
                           f"depth_crops_m_s{seed}_n{count}_{CROP_PX}{view_suffix(view, '_')}",
                           ("images", "heights", "masks"), count, seed, workers, cache,
                           "render depth crops")
