"""The runtime's body model: the mouse's keypoints and its behaviour classes.

The facts every stage shares, whether it runs live or makes synthetic data: the 14
keypoints in the order every array in the project uses, and the behaviour labels with
the coarse classes they map to. numpy only; nothing here imports the synthetic data
engine (:mod:`mouse_lifter_ros.core.synth`), which builds on this module.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BEHAVIORS", "BEHAVIOR_CLASSES", "CLASSES", "KEYPOINTS"]

#: The 14 body-model keypoints, in the order every array in the project uses.
KEYPOINTS: Final[tuple[str, ...]] = (
    "nose", "left_ear", "right_ear", "head", "neck", "spine_center", "lumbar_spine",
    "tail_base", "tail_mid", "tail_tip", "left_forepaw", "right_forepaw", "left_hindpaw",
    "right_hindpaw",
)

#: Fine behaviour labels (those of the synthetic data engine's bouts).
BEHAVIORS: Final[tuple[str, ...]] = (
    "walk", "trot", "turn", "rear", "rear_wall", "groom", "sniff", "rest")
#: Coarse behaviour classes (those the behaviour classifier tells apart).
CLASSES: Final[tuple[str, ...]] = ("locomotion", "rearing", "grooming", "stationary")
#: Fine label -> coarse class.
BEHAVIOR_CLASSES: Final[dict[str, str]] = {
    "walk": "locomotion", "trot": "locomotion", "turn": "locomotion",
    "rear": "rearing", "rear_wall": "rearing", "groom": "grooming",
    "sniff": "stationary", "rest": "stationary",
}
