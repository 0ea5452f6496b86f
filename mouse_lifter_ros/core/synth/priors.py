"""What real 3D mouse data says about lengths and heights: the DANNCE 3D labels.

DANNCE's ``markerless_mouse_1`` session (``../shared/data/dannce-3d``) has 81 frames
hand-labelled in 3D with the 22-joint ``mouse22`` skeleton, in millimetres, floor at
z ~ 0 and z up. :func:`load_dannce_3d` reads them into metres; the other functions
give the numbers the body model and the motion generators are checked against: median
bone lengths and percentile heights.

scipy (for reading the MATLAB file) is imported only inside :func:`load_dannce_3d`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np

from mouse_lifter_ros.core.body import FloatArray
from mouse_lifter_ros.core.errors import InputError

#: The 22 joints of DANNCE's ``mouse22`` skeleton, in its order.
DANNCE_JOINTS: Final[tuple[str, ...]] = (
    "EarL", "EarR", "Snout", "SpineF", "SpineM", "Tail(base)", "Tail(mid)", "Tail(end)",
    "ForepawL", "WristL", "ElbowL", "ShoulderL", "ForepawR", "WristR", "ElbowR",
    "ShoulderR", "HindpawL", "AnkleL", "KneeL", "HindpawR", "AnkleR", "KneeR",
)

#: The bones of ``mouse22_skeleton.mat`` (its ``joints_idx``), as name pairs.
DANNCE_BONES: Final[tuple[tuple[str, str], ...]] = (
    ("EarL", "EarR"), ("EarR", "Snout"), ("EarL", "Snout"), ("EarL", "SpineF"),
    ("EarR", "SpineF"), ("Snout", "SpineF"), ("SpineF", "SpineM"), ("SpineM", "Tail(base)"),
    ("Tail(base)", "Tail(mid)"), ("Tail(mid)", "Tail(end)"),
    ("ForepawL", "WristL"), ("WristL", "ElbowL"), ("ElbowL", "ShoulderL"),
    ("ShoulderL", "SpineF"),
    ("ForepawR", "WristR"), ("WristR", "ElbowR"), ("ElbowR", "ShoulderR"),
    ("ShoulderR", "SpineF"),
    ("HindpawL", "AnkleL"), ("AnkleL", "KneeL"), ("KneeL", "SpineM"),
    ("HindpawR", "AnkleR"), ("AnkleR", "KneeR"), ("KneeR", "SpineM"),
)

#: DANNCE joint -> the body-model joint (:data:`~mouse_lifter_ros.core.body.JOINTS`) at the
#: same place.
#: Wrists and ankles have no counterpart (the model's limbs have two bones). DANNCE's
#: ``SpineM`` sits 25 mm in front of the tail base, nearest our ``lumbar_spine`` (20 mm;
#: ``spine_center`` is 40 mm), as in :mod:`~mouse_lifter_ros.core.keypoint_maps`.
DANNCE_TO_JOINTS: Final[dict[str, str]] = {
    "EarL": "left_ear", "EarR": "right_ear", "Snout": "nose", "SpineF": "neck",
    "SpineM": "lumbar_spine", "Tail(base)": "tail_base", "Tail(mid)": "tail_mid",
    "Tail(end)": "tail_tip", "ForepawL": "left_forepaw", "ElbowL": "left_elbow",
    "ShoulderL": "left_shoulder", "ForepawR": "right_forepaw", "ElbowR": "right_elbow",
    "ShoulderR": "right_shoulder", "HindpawL": "left_hindpaw", "KneeL": "left_knee",
    "HindpawR": "right_hindpaw", "KneeR": "right_knee",
}


def load_dannce_3d(path: str | Path) -> FloatArray:
    """The 3D labels of a DANNCE ``*_label3d_dannce.mat`` file.

    Returns
    -------
    (F, 22, 3) joint positions in metres in DANNCE's arena frame (z up, floor near
    z = 0), joints in :data:`DANNCE_JOINTS` order; NaN where a joint is unlabelled.

    Raises
    ------
    InputError
        The file is missing, not a MATLAB file, or has no ``labelData`` with a
        ``data_3d`` of 66 columns (22 joints x 3).
    """
    import scipy.io  # lazily: only this reader needs scipy

    path = Path(path)
    if not path.is_file():
        raise InputError(f"DANNCE label file {path} does not exist")
    try:
        mat: dict[str, Any] = scipy.io.loadmat(str(path), simplify_cells=True)
    except Exception as exc:  # scipy raises many kinds on a malformed file
        raise InputError(f"{path} is not a readable MATLAB (.mat) file: {exc}") from None
    labels = mat.get("labelData")
    if isinstance(labels, dict):
        labels = [labels]
    if not isinstance(labels, list) or not labels or not isinstance(labels[0], dict) \
            or "data_3d" not in labels[0]:
        raise InputError(f"{path} is not a DANNCE label3d file: it has no labelData[0] "
                         f"with a data_3d array (keys: {', '.join(sorted(mat))})")
    data = np.asarray(labels[0]["data_3d"], dtype=np.float64)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2 or data.shape[1] != 3 * len(DANNCE_JOINTS):
        raise InputError(f"{path}: labelData[0].data_3d has shape {data.shape}; a DANNCE "
                         f"mouse22 label file has (frames, {3 * len(DANNCE_JOINTS)})")
    # Columns are joint-major: x, y, z of joint 0, then of joint 1, ...
    return np.asarray(data.reshape(len(data), len(DANNCE_JOINTS), 3) / 1000.0)


def _check_points(points: FloatArray) -> FloatArray:
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (len(DANNCE_JOINTS), 3):
        raise InputError(f"DANNCE points have shape {pts.shape}; expected "
                         f"(frames, {len(DANNCE_JOINTS)}, 3)")
    return pts


def dannce_bone_lengths(points: FloatArray) -> dict[tuple[str, str], float]:
    """Median length (m) of every :data:`DANNCE_BONES` bone over the labelled frames.

    ``points`` is (F, 22, 3) metres as :func:`load_dannce_3d` returns. Bones with no
    frame where both ends are labelled are left out. The ear and ear-snout pairs are
    in :data:`DANNCE_BONES`; any other pair can be measured the same way by hand.
    """
    pts = _check_points(points)
    out: dict[tuple[str, str], float] = {}
    for a, b in DANNCE_BONES:
        d = np.linalg.norm(pts[:, DANNCE_JOINTS.index(a)] - pts[:, DANNCE_JOINTS.index(b)],
                           axis=1)
        d = d[np.isfinite(d)]
        if d.size:
            out[(a, b)] = float(np.median(d))
    return out


def dannce_height_ranges(points: FloatArray) -> dict[str, tuple[float, float, float]]:
    """5th, 50th and 95th percentile height (z, m) of every labelled DANNCE joint.

    ``points`` is (F, 22, 3) metres. Note that DANNCE labels sit on the fur surface
    (``SpineM`` on the back), while the body model's spine joints run inside the body.
    """
    pts = _check_points(points)
    out: dict[str, tuple[float, float, float]] = {}
    for j, name in enumerate(DANNCE_JOINTS):
        z = pts[:, j, 2]
        z = z[np.isfinite(z)]
        if z.size:
            p5, p50, p95 = np.percentile(z, [5.0, 50.0, 95.0])
            out[name] = (float(p5), float(p50), float(p95))
    return out
