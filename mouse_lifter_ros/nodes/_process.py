"""What a node executable does first, before it imports rclpy or a model runtime."""

from __future__ import annotations

import os

from mouse_lifter_ros.nodes._signals import STOP

#: The environment variables of a Fast DDS profile file: Fast DDS 3 (Kilted) reads both,
#: Fast DDS 2 (Jazzy) the second; the package sets only the second (both would load the
#: file twice, and its transports clash).
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def prepare() -> None:
    """Take SIGINT and SIGTERM as stop requests from now on (:data:`._signals.STOP`), and
    use the package's Fast DDS profile (``config/fastdds.xml``: images of any size in one
    piece) unless a profile file is already set."""
    STOP.install()
    if any(os.environ.get(v) for v in PROFILE_VARIABLES):
        return
    try:
        from ament_index_python.packages import get_package_share_directory

        profile = os.path.join(get_package_share_directory("mouse_lifter_ros"), "config",
                               "fastdds.xml")
    except Exception:  # not installed with colcon: Fast DDS's defaults
        return
    if os.path.isfile(profile):
        os.environ[PROFILE_VARIABLES[1]] = profile
