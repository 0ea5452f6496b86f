"""What a node executable does first, before it imports rclpy or a model runtime."""

from __future__ import annotations

import importlib.metadata
import os

from mouse_lifter_ros.nodes._signals import STOP

#: The environment variables of a Fast DDS profile file: Fast DDS 3 (Kilted and later)
#: reads the first (the second too, with a deprecation warning), Fast DDS 2 (Jazzy) only
#: the second. Only one is set: with both, Fast DDS 3 loads the file twice and its
#: transports clash.
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
#: Distributions whose Fast DDS is 2.x.
_FAST_DDS_2 = ("humble", "iron", "jazzy")


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
        os.environ[PROFILE_VARIABLES[1] if _fast_dds_2() else PROFILE_VARIABLES[0]] = profile


def _fast_dds_2() -> bool:
    """Whether this ROS 2 runs Fast DDS 2: ROS_DISTRO (set by a sourced ROS install), or
    else the distribution's rclpy wheel."""
    distro = os.environ.get("ROS_DISTRO", "")
    if distro:
        return distro in _FAST_DDS_2
    for name in _FAST_DDS_2:
        try:
            importlib.metadata.distribution(f"ros-{name}-rclpy")
        except importlib.metadata.PackageNotFoundError:
            continue
        return True
    return False
