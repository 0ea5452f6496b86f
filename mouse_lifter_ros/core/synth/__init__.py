"""The synthetic data engine: a 3D mouse body model, its motion, a renderer and datasets.

- :mod:`.body`: the articulated skeleton, shape parameters, forward kinematics, the
  ellipsoid surface and the keypoint name mappings to other tools.
- :mod:`.motion`: a pose prior and behaviour generators (gaits, turning, rearing,
  grooming, sniffing, resting) giving smooth labelled sequences.
- :mod:`.render`: pinhole camera above or below the arena, scenes and image effects;
  images, depth, keypoints, visibility and masks.
- :mod:`.objects`: distractor objects in the arena (cups, bowls, shelters, tubes,
  hoppers, bottles, cables), ray-traced, shaded and casting shadows for the renderer.
- :mod:`.heldout`: held-out test frames of hard scene kinds (a dark object near the
  mouse, infrared light, bedding, a small mouse in a large frame).
- :mod:`.dataset`: versioned datasets on disk (``mouse-lifter synth``).

Everything here is in metres, radians and seconds; the arena frame follows REP-103
(x, y on the floor, z up, origin at the arena centre).
"""
