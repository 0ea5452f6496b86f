"""What the sources accept: one definition, used by the core's checks and the node
parameters' descriptors alike (a light module: the nodes import it at start-up)."""

from __future__ import annotations

from typing import Final

#: Largest frame width or height a camera source can be asked for, pixels (an 8K sensor
#: is 7680 wide): beyond it a resize buffer alone takes gigabytes.
MAX_FRAME_SIDE: Final = 8192
#: Frame rates a camera source can be asked for (0 aside: the native rate), Hz.
FPS_RANGE: Final = (0.01, 1000.0)
#: Playback speed factors a rosbag replay takes: slower and a frame waits for hours,
#: faster and its schedule is a busy loop.
RATE_RANGE: Final = (0.001, 1000.0)
