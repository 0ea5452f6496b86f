"""rosbag2 folders (sqlite3 or MCAP) read and written with ``rosbags``, without ROS.

Replay hands out the recorded CDR bytes as they are, so a node can publish them
without deserialising (``Publisher.publish(bytes)``); :func:`restamp_cdr` rewrites
only the header stamp when the replay should look like a live camera.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore

from mouse_lifter_ros.core.errors import InputError, SourceError
from mouse_lifter_ros.core.images import image_to_grey_or_bgr, numpy_to_image_fields
from mouse_lifter_ros.core.limits import RATE_RANGE

if TYPE_CHECKING:
    from mouse_lifter_ros.core.calibration import CameraInfoFields

#: Message types a replay can publish: each begins with a ``std_msgs/Header``.
IMAGE_TYPE = "sensor_msgs/msg/Image"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
REPLAYABLE_TYPES = (IMAGE_TYPE, CAMERA_INFO_TYPE)

_TYPESTORE = get_typestore(Stores.ROS2_JAZZY)
_NS = 1_000_000_000


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag: name, message type and number of messages."""

    name: str
    msgtype: str
    count: int


@dataclass(frozen=True)
class ReplayMessage:
    """One message due for publication.

    Attributes
    ----------
    topic, msgtype:
        Where and what it was recorded.
    data:
        The recorded CDR bytes, encapsulation header included.
    recorded_ns:
        Receive time stored in the bag, nanoseconds since the epoch.
    index:
        Position of the message in the whole replay, counting loops.
    loop:
        Pass over the bag: 0 the first time, 1 after the first loop, ...
    """

    topic: str
    msgtype: str
    data: bytes
    recorded_ns: int
    index: int
    loop: int = 0


def bag_topics(path: str | os.PathLike[str]) -> list[TopicInfo]:
    """List the topics of the bag folder ``path`` (sqlite3 or MCAP storage)."""
    reader = _open_reader(Path(path))  # already open: `with reader` would open it again
    try:
        return [
            TopicInfo(name, info.msgtype or "?", info.msgcount)
            for name, info in sorted(reader.topics.items())
        ]
    finally:
        reader.close()


def _open_reader(path: Path) -> Reader:
    if not path.exists():
        raise SourceError(f"rosbag '{path}' does not exist")
    if not (path / "metadata.yaml").is_file():
        raise SourceError(f"rosbag '{path}' is not a rosbag2 folder (no metadata.yaml)")
    reader = Reader(path)
    try:
        reader.open()
    except Exception as exc:  # rosbags raises several types for unreadable bags
        raise SourceError(f"rosbag '{path}' cannot be read: {exc}") from exc
    return reader


def restamp_cdr(data: bytes, stamp_ns: int) -> bytes:
    """Return ``data`` with its leading ``std_msgs/Header`` stamp set to ``stamp_ns``.

    Parameters
    ----------
    data:
        CDR bytes of a message whose first field is a ``std_msgs/Header``
        (4-byte encapsulation header, then ``int32 sec``, ``uint32 nanosec``).
    stamp_ns:
        The new stamp, nanoseconds since the epoch.
    """
    if len(data) < 12 or data[0] != 0 or data[1] not in (0, 1):
        raise SourceError("message is not plain CDR (unknown encapsulation header)")
    order = "<" if data[1] == 1 else ">"
    sec, nsec = divmod(stamp_ns, _NS)
    return b"".join((data[:4], struct.pack(f"{order}iI", sec, nsec), memoryview(data)[12:]))


def cdr_stamp_ns(data: bytes) -> int:
    """Return the header stamp (nanoseconds) of CDR ``data`` beginning with a Header."""
    order = "<" if data[1] == 1 else ">"
    sec, nsec = struct.unpack_from(f"{order}iI", data, 4)
    return int(sec) * _NS + int(nsec)


class Restamper:
    """Give replayed messages new header stamps, keeping messages of one frame together.

    An image and its camera info share a recorded stamp; within one pass over the bag
    both get the same new stamp (the time the first of them was published), so that
    subscribers can still pair them. The next pass of a looping replay is a new frame.
    """

    def __init__(self, memory: int = 8) -> None:
        self._map: dict[tuple[int, int], int] = {}
        self._memory = memory

    def __call__(self, msg: ReplayMessage, now_ns: int) -> bytes:
        """Return the message's CDR bytes stamped with ``now_ns``, or its twin's stamp."""
        key = (msg.loop, cdr_stamp_ns(msg.data))
        new = self._map.get(key)
        if new is None:
            new = self._map[key] = now_ns
            if len(self._map) > self._memory:
                del self._map[next(iter(self._map))]
        return restamp_cdr(msg.data, new)


class BagReplay:
    """Replay chosen topics of a bag with the recorded timing, scaled by ``rate``.

    Iterating sleeps until each message is due, then yields it; the caller publishes.
    Message ``n`` is due at ``start + (t_n - t_first) / rate`` on the monotonic clock,
    a fixed schedule that does not drift when publishing takes time.

    Parameters
    ----------
    path:
        The bag folder.
    topics:
        Topics to replay, each with the type it must have in the bag (one of
        :data:`REPLAYABLE_TYPES`): ``{"/camera/image_raw": IMAGE_TYPE}``.
    rate:
        Playback speed factor in :data:`~.limits.RATE_RANGE` (2.0 = twice as fast as recorded).
    start_offset:
        Seconds from the start of the bag to skip, >= 0 and before its end.
    loop:
        Start again from ``start_offset`` after the last message.
    clock, sleep:
        Monotonic clock (seconds) and sleep function; for tests.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        topics: Mapping[str, str],
        rate: float = 1.0,
        start_offset: float = 0.0,
        loop: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = Path(path)
        low, high = RATE_RANGE
        if not low <= rate <= high:
            raise SourceError(f"rosbag replay rate {rate!r} must be >= {low:g} and <= {high:g}")
        unknown = {t: m for t, m in topics.items() if m not in REPLAYABLE_TYPES}
        if unknown:
            raise SourceError(f"rosbag replay: cannot replay {unknown}; replay supports "
                              f"{', '.join(REPLAYABLE_TYPES)}")
        self.rate, self.loop = rate, loop
        self._clock, self._sleep = clock, sleep
        self._reader = _open_reader(self.path)
        try:
            self._select(topics, start_offset)
        except SourceError:
            self._reader.close()
            raise
        self.loops = 0

    def _select(self, topics: Mapping[str, str], start_offset: float) -> None:
        """Check the topics and the offset against the bag; pick the connections."""
        available = self._reader.topics
        missing = [t for t in topics if t not in available]
        if missing:
            have = ", ".join(f"{n} ({i.msgtype})" for n, i in sorted(available.items()))
            raise SourceError(
                f"rosbag '{self.path}' has no topic {', '.join(map(repr, missing))}; "
                f"it has: {have or 'no topics'}"
            )
        wrong = [f"topic {t!r} holds {available[t].msgtype}, not {want}"
                 for t, want in topics.items() if available[t].msgtype != want]
        if wrong:
            kinds = ", ".join(f"{n} ({i.msgtype})" for n, i in sorted(available.items()))
            raise SourceError(f"rosbag '{self.path}': " + "; ".join(wrong)
                              + f" (its topics: {kinds}; choose them with the image_topic "
                              "and camera_info_topic parameters)")
        self.connections = [c for c in self._reader.connections if c.topic in topics]
        self.start_ns = self._reader.start_time + round(start_offset * _NS)
        if start_offset < 0 or self.start_ns >= self._reader.end_time:
            duration = (self._reader.end_time - self._reader.start_time) / _NS
            raise SourceError(
                f"rosbag '{self.path}': start_offset {start_offset!r} s must be >= 0 and "
                f"before the end of the bag ({duration:.3f} s)"
            )

    def close(self) -> None:
        """Close the bag."""
        self._reader.close()

    def __enter__(self) -> BagReplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[ReplayMessage]:
        index = 0
        base = self._clock()
        while True:
            first_ns: int | None = None
            last_ns, steps = 0, 0  # steps: changes of recorded time in this pass
            last_due = base
            for conn, t_ns, data in self._reader.messages(self.connections, start=self.start_ns):
                if first_ns is None:
                    first_ns = t_ns
                elif t_ns != last_ns:
                    steps += 1
                last_ns = t_ns
                last_due = base + (t_ns - first_ns) / _NS / self.rate
                delay = last_due - self._clock()
                if delay > 0:
                    self._sleep(delay)
                yield ReplayMessage(conn.topic, conn.msgtype, data, t_ns, index, self.loops)
                index += 1
            if not self.loop or first_ns is None:
                return
            self.loops += 1
            # Keep the recorded spacing across the seam: one mean period after the last.
            period = (last_due - base) / steps if steps else 0.0
            base = last_due + period


class BagImages:
    """The images of one topic of a bag, decoded (offline analysis; no timing).

    Iterating yields ``(stamp_ns, frame)`` in recorded order: the image header's stamp
    (its capture time, nanoseconds) and the pixels as (H, W) grey or (H, W, 3) BGR uint8
    (:func:`~.images.image_to_grey_or_bgr`; a read-only view, valid until the next one).
    Each iteration reads the bag from its start.

    Parameters
    ----------
    path:
        The bag folder (sqlite3 or MCAP).
    topic:
        A ``sensor_msgs/msg/Image`` topic of the bag.

    Attributes
    ----------
    count:
        Messages on the topic, as the bag's metadata says.
    skipped:
        Messages of the last iteration that could not be decoded (damaged bytes), one
        line each saying which; iteration goes on past them.

    Raises
    ------
    SourceError
        A bag that cannot be read, or one without the topic (listing those it has) or
        where it has another type. An image whose encoding the models do not take is a
        :class:`SourceError` when it is reached.
    """

    def __init__(self, path: str | os.PathLike[str], topic: str = "/camera/image_raw") -> None:
        self.path, self.topic = Path(path), topic
        self._reader = _open_reader(self.path)
        try:
            available = self._reader.topics
            if topic not in available:
                have = ", ".join(f"{n} ({i.msgtype})" for n, i in sorted(available.items()))
                raise SourceError(f"rosbag '{self.path}' has no topic {topic!r}; it has: "
                                  f"{have or 'no topics'}")
            if available[topic].msgtype != "sensor_msgs/msg/Image":
                raise SourceError(f"rosbag '{self.path}': topic {topic!r} has type "
                                  f"{available[topic].msgtype}, not sensor_msgs/msg/Image")
        except SourceError:
            self._reader.close()
            raise
        self.count = int(available[topic].msgcount)
        self.skipped: list[str] = []
        self._connections = [c for c in self._reader.connections if c.topic == topic]

    def __iter__(self) -> Iterator[tuple[int, np.ndarray[Any, np.dtype[np.uint8]]]]:
        self.skipped = []
        for index, (conn, t_ns, data) in enumerate(self._reader.messages(self._connections)):
            try:
                msg = _TYPESTORE.deserialize_cdr(data, conn.msgtype)
            except Exception as exc:  # rosbags raises several types on damaged bytes
                self.skipped.append(f"message {index} (recorded at {t_ns / _NS:.3f} s, "
                                    f"{len(data)} bytes): {type(exc).__name__}: {exc}")
                continue
            stamp = msg.header.stamp
            try:
                frame = image_to_grey_or_bgr(msg)
            except InputError as exc:
                raise SourceError(f"rosbag '{self.path}', topic {self.topic!r}: {exc}") from exc
            yield int(stamp.sec) * _NS + int(stamp.nanosec), frame

    def close(self) -> None:
        """Close the bag."""
        self._reader.close()

    def __enter__(self) -> BagImages:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_image_bag(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    *,
    fps: float,
    encoding: str,
    image_topic: str = "/camera/image_raw",
    camera_info_topic: str | None = "/camera/camera_info",
    camera_info: CameraInfoFields | None = None,
    frame_id: str = "camera_optical_frame",
    start_ns: int = 1_700_000_000 * _NS,
    storage: Literal["sqlite3", "mcap"] = "sqlite3",
) -> int:
    """Write frames (and optionally a CameraInfo per frame) as a rosbag2 folder.

    Parameters
    ----------
    path:
        The bag folder to create; it must not exist.
    frames:
        Images, each (H, W) or (H, W, C) as ``encoding`` requires.
    fps:
        Frame rate; frame ``i`` is stamped and stored at ``start_ns + i / fps`` seconds.
    camera_info:
        Published on ``camera_info_topic`` with each frame when given.

    Returns
    -------
    int
        Number of frames written.
    """
    if not fps > 0:
        raise ValueError(f"fps {fps!r} must be > 0")
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    types = _TYPESTORE.types
    count = 0
    with Writer(Path(path), version=9, storage_plugin=plugin) as writer:
        img_conn = writer.add_connection(image_topic, "sensor_msgs/msg/Image", typestore=_TYPESTORE)
        info_conn = None
        if camera_info is not None and camera_info_topic:
            info_conn = writer.add_connection(
                camera_info_topic, "sensor_msgs/msg/CameraInfo", typestore=_TYPESTORE
            )
        for i, frame in enumerate(frames):
            t_ns = start_ns + round(i * _NS / fps)
            header = types["std_msgs/msg/Header"](
                stamp=types["builtin_interfaces/msg/Time"](sec=t_ns // _NS, nanosec=t_ns % _NS),
                frame_id=frame_id,
            )
            f = numpy_to_image_fields(frame, encoding)
            msg = types["sensor_msgs/msg/Image"](
                header=header, height=f.height, width=f.width, encoding=f.encoding,
                is_bigendian=f.is_bigendian, step=f.step,
                data=np.frombuffer(f.data, dtype=np.uint8),
            )
            writer.write(img_conn, t_ns, _TYPESTORE.serialize_cdr(msg, msg.__msgtype__))
            if info_conn is not None and camera_info is not None:
                info = _camera_info_msg(types, header, camera_info)
                writer.write(info_conn, t_ns, _TYPESTORE.serialize_cdr(info, info.__msgtype__))
            count += 1
    return count


def _camera_info_msg(types: Any, header: Any, c: CameraInfoFields) -> Any:
    roi = types["sensor_msgs/msg/RegionOfInterest"](
        x_offset=c.roi_x_offset, y_offset=c.roi_y_offset, height=c.roi_height,
        width=c.roi_width, do_rectify=c.roi_do_rectify,
    )
    return types["sensor_msgs/msg/CameraInfo"](
        header=header, height=c.height, width=c.width, distortion_model=c.distortion_model,
        d=np.asarray(c.d, float), k=np.asarray(c.k, float), r=np.asarray(c.r, float),
        p=np.asarray(c.p, float), binning_x=c.binning_x, binning_y=c.binning_y, roi=roi,
    )


class TopicBagWriter:
    """Serialised messages of several topics written to a new rosbag2 folder as they come.

    The recorder node hands each message it receives as CDR bytes (what
    ``rclpy.serialization.serialize_message`` gives) with its receive time; the bag
    reads back with ``ros2 bag`` or ``rosbags`` like one ``ros2 bag record`` wrote.
    :meth:`close` writes the bag's ``metadata.yaml``: call it on SIGINT/SIGTERM (the
    recorder node does) to leave a complete bag.

    Parameters
    ----------
    path:
        The bag folder to create; it must not exist.
    topics:
        ``{topic name: message type}``, e.g. ``{"/pose": "mouse_lifter_ros/msg/Pose3D"}``.
    definitions:
        ``{message type: .msg text}`` of types the ROS 2 Jazzy type store lacks (ours);
        their fields may use any Jazzy type.
    storage:
        ``"mcap"`` (the ROS 2 default since Iron) or ``"sqlite3"``.

    Raises
    ------
    InputError
        The folder exists, a storage or a message type is unknown, or a definition does
        not parse (every problem in one message).
    """

    def __init__(self, path: str | os.PathLike[str], *, topics: dict[str, str],
                 definitions: dict[str, str] | None = None,
                 storage: Literal["sqlite3", "mcap"] = "mcap") -> None:
        self.path = Path(path)
        problems = []
        if self.path.exists():
            problems.append(f"{self.path} exists (a bag is never written over)")
        if storage not in ("sqlite3", "mcap"):
            problems.append(f"storage {storage!r} is not mcap or sqlite3")
        store = get_typestore(Stores.ROS2_JAZZY)
        for name, text in (definitions or {}).items():
            try:
                store.register(get_types_from_msg(text, name))
            except TypesysError as exc:
                problems.append(f"the definition of {name} does not parse: {exc}")
        for topic, msgtype in topics.items():
            if msgtype not in store.types:
                problems.append(f"topic {topic}: message type {msgtype} is unknown")
        if problems:
            raise InputError(f"bag {self.path}: " + "; ".join(problems))
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._writer.open()
        self._connections = {topic: self._writer.add_connection(topic, msgtype, typestore=store)
                             for topic, msgtype in topics.items()}
        self.messages = 0
        self._closed = False

    def write(self, topic: str, time_ns: int, data: bytes) -> None:
        """Append one message of ``topic`` (CDR bytes) received at ``time_ns``."""
        if self._closed:
            raise InputError(f"bag {self.path} is closed")
        try:
            connection = self._connections[topic]
        except KeyError:
            raise InputError(f"bag {self.path}: topic {topic} was not declared; "
                             f"declared: {', '.join(self._connections)}") from None
        self._writer.write(connection, int(time_ns), data)
        self.messages += 1

    def close(self) -> int:
        """Finish the bag (idempotent); the number of messages written."""
        if not self._closed:
            self._closed = True
            self._writer.close()
        return self.messages

    def __enter__(self) -> TopicBagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
