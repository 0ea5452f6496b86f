"""Name mappings between our 14 keypoints and the keypoint sets labs use.

Each mapping goes from the other tool's body-part name to ours, and lists only the
points that coincide (the same anatomical point, within what a labeller would tell
apart). Points of the other set that have no counterpart here are left out, and
:func:`unmapped` names them.

- ``dlc_openfield``: DeepLabCut's openfield example project (top view, 4 points).
- ``pymouselifter8``: the 8 top-view points of the PyMouseLifter paper, as we read its
  figures (nose, both ears, neck, body centre, tail base, tail middle, tail tip); check
  the names against the labels of your own PyMouseLifter data.
- ``inscopix_bottom8``: the Inscopix IDEAS bottom-view mouse pose tool's 8 points.
- ``dannce22``: DANNCE's ``mouse22`` skeleton (``mouse22_skeleton.mat``). DANNCE's
  ``SpineF`` sits between the shoulders (our ``neck``); ``SpineM``, 25 mm in front of
  the tail base, is nearest our ``lumbar_spine`` (20 mm); its paws are ``Forepaw``/``Hindpaw``.
- ``superanimal_topviewmouse``: DeepLabCut SuperAnimal-TopViewMouse's 27 points.
  ``tail3`` is the middle of its five evenly spaced tail points (our ``tail_mid``),
  ``mid_backend2`` its lumbar point.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.core.errors import InputError

KEYPOINT_MAPS: Final[dict[str, dict[str, str]]] = {
    "dlc_openfield": {
        "snout": "nose", "leftear": "left_ear", "rightear": "right_ear",
        "tailbase": "tail_base",
    },
    "pymouselifter8": {
        "nose": "nose", "left_ear": "left_ear", "right_ear": "right_ear", "neck": "neck",
        "body_center": "spine_center", "tail_base": "tail_base", "tail_mid": "tail_mid",
        "tail_tip": "tail_tip",
    },
    "inscopix_bottom8": {
        "nose": "nose", "neck": "neck", "left_forepaw": "left_forepaw",
        "right_forepaw": "right_forepaw", "left_hindpaw": "left_hindpaw",
        "right_hindpaw": "right_hindpaw", "tail_base": "tail_base", "tail_tip": "tail_tip",
    },
    "dannce22": {
        "Snout": "nose", "EarL": "left_ear", "EarR": "right_ear", "SpineF": "neck",
        "SpineM": "lumbar_spine", "Tail(base)": "tail_base", "Tail(mid)": "tail_mid",
        "Tail(end)": "tail_tip", "ForepawL": "left_forepaw", "ForepawR": "right_forepaw",
        "HindpawL": "left_hindpaw", "HindpawR": "right_hindpaw",
    },
    "superanimal_topviewmouse": {
        "nose": "nose", "left_ear": "left_ear", "right_ear": "right_ear",
        "head_midpoint": "head", "neck": "neck", "mouse_center": "spine_center",
        "mid_backend2": "lumbar_spine", "tail_base": "tail_base", "tail3": "tail_mid",
        "tail_end": "tail_tip",
    },
}

#: Every body part of each set, mapped or not, in the set's own order.
KEYPOINT_SETS: Final[dict[str, tuple[str, ...]]] = {
    "dlc_openfield": ("snout", "leftear", "rightear", "tailbase"),
    "pymouselifter8": tuple(KEYPOINT_MAPS["pymouselifter8"]),
    "inscopix_bottom8": tuple(KEYPOINT_MAPS["inscopix_bottom8"]),
    "dannce22": (
        "EarL", "EarR", "Snout", "SpineF", "SpineM", "Tail(base)", "Tail(mid)", "Tail(end)",
        "ForepawL", "WristL", "ElbowL", "ShoulderL", "ForepawR", "WristR", "ElbowR",
        "ShoulderR", "HindpawL", "AnkleL", "KneeL", "HindpawR", "AnkleR", "KneeR"),
    "superanimal_topviewmouse": (
        "nose", "left_ear", "right_ear", "left_ear_tip", "right_ear_tip", "left_eye",
        "right_eye", "neck", "mid_back", "mouse_center", "mid_backend", "mid_backend2",
        "mid_backend3", "tail_base", "tail1", "tail2", "tail3", "tail4", "tail5",
        "left_shoulder", "left_midside", "left_hip", "right_shoulder", "right_midside",
        "right_hip", "tail_end", "head_midpoint"),
}


def keypoint_map(name: str) -> dict[str, str]:
    """The mapping ``name`` (their body part -> our keypoint)."""
    try:
        return dict(KEYPOINT_MAPS[name])
    except KeyError:
        raise InputError(f"keypoint set {name!r} is unknown; known: "
                         f"{', '.join(KEYPOINT_MAPS)}") from None


def unmapped(name: str) -> tuple[str, ...]:
    """Body parts of the set ``name`` that have no counterpart among our keypoints."""
    mapping = keypoint_map(name)
    return tuple(p for p in KEYPOINT_SETS[name] if p not in mapping)


def parse_map(text: str, *, targets: Sequence[str] | None = KEYPOINTS) -> dict[str, str]:
    """Parse ``"snout=nose,leftear=left_ear"``; every target must be one of ``targets``
    (default ours; None: any name, for a model whose keypoints are checked later)."""
    out: dict[str, str] = {}
    problems = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        theirs, sep, ours = item.partition("=")
        if not sep or not theirs or not ours:
            problems.append(f"{item!r} is not written their_name=our_name")
        elif targets is not None and ours not in targets:
            problems.append(f"{ours!r} (in {item!r}) is not one of: {', '.join(targets)}")
        else:
            out[theirs] = ours
    if problems:
        raise InputError("keypoint map: " + "; ".join(problems))
    return out
