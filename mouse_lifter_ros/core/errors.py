"""Errors raised by the ROS-free core.

Every error names the object it is about (a file, a topic, a parameter) and the
problem, so that a node can log it as it is and exit.
"""

from __future__ import annotations


class MouseLifterError(Exception):
    """Base class of every error the core raises on purpose."""


class InputError(MouseLifterError, ValueError):
    """Input data that cannot be used: a wrong image encoding, a size mismatch, a NaN."""


class ParameterError(MouseLifterError, ValueError):
    """One or more invalid parameter values; the message lists every problem."""


class CalibrationError(InputError):
    """A camera calibration file that is missing, malformed or inconsistent."""


class SourceError(MouseLifterError, RuntimeError):
    """An image source (camera, video file, rosbag) that cannot be opened or read."""
