"""bag_source_node: replays image and camera_info topics of a rosbag2 as if live.

Publishes ``image_raw`` and ``camera_info`` with the latest-frame QoS, keeping the
recorded timing scaled by ``rate``. The recorded CDR bytes are published as they are
(no deserialisation); with ``restamp`` only their header stamp is rewritten.
"""

from __future__ import annotations

import os
import threading

from sensor_msgs.msg import CameraInfo, Image

from mouse_lifter_ros.core.bag import (
    CAMERA_INFO_TYPE,
    IMAGE_TYPE,
    BagReplay,
    Restamper,
    cdr_stamp_ns,
)
from mouse_lifter_ros.core.node_params import BAG_SOURCE_PARAMS
from mouse_lifter_ros.nodes._ros import (
    LATEST_FRAME_QOS,
    declare_parameters,
    resolve_path,
    run,
)
from mouse_lifter_ros.nodes._source import SourceNode

#: How much lower the replay thread's scheduling priority is than the rest (nice value).
REPLAY_NICENESS = 5


class BagSourceNode(SourceNode):
    """Replay in a thread of its own, publishing each message when it is due."""

    def __init__(self) -> None:
        super().__init__("bag_source")
        p = declare_parameters(self, BAG_SOURCE_PARAMS)
        self.restamp = p["restamp"]
        self.image_pub = self.create_publisher(Image, "image_raw", LATEST_FRAME_QOS)
        self.publishers_by_topic = {p["image_topic"]: self.image_pub}
        types = {p["image_topic"]: IMAGE_TYPE}
        if p["camera_info_topic"]:
            self.publishers_by_topic[p["camera_info_topic"]] = self.create_publisher(
                CameraInfo, "camera_info", LATEST_FRAME_QOS)
            types[p["camera_info_topic"]] = CAMERA_INFO_TYPE
        self.replay = BagReplay(
            resolve_path(p["bag"]), topics=types, rate=p["rate"],
            start_offset=p["start_offset"], loop=p["loop"])
        self.get_logger().info(
            f"replaying {', '.join(self.publishers_by_topic)} of {p['bag']} at rate "
            f"{p['rate']:g} on {self.image_pub.topic_name}")
        self.start_source(self.image_pub, p)

    def produce(self) -> None:
        """Publish each message when it is due (and, with flow control, when the stages
        can take its frame), until the bag ends or the node stops."""
        # A replay stands in for a camera, whose capture costs this machine nothing: it
        # yields the CPU to the stages (reading frames that flow control then skips is
        # work a real camera does not put on the host).
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), REPLAY_NICENESS)
        restamper = Restamper()
        count = offered_ns = 0
        decided: dict[tuple[int, int], bool] = {}  # frame (loop, recorded ns) -> sent
        for msg in self.replay:
            if self.done.is_set():
                return
            key = (msg.loop, msg.recorded_ns)
            first = key not in decided  # the frame's first message: its image or info
            if first:
                offered_ns = self.get_clock().now().nanoseconds
                decided[key] = self.reserve(self._frame_interval(key, decided))
                while len(decided) > 8:
                    del decided[next(iter(decided))]
            if not decided[key]:
                continue
            data = restamper(msg, self.frame_stamp_ns(offered_ns)) if self.restamp else msg.data
            if first:
                self.sent(cdr_stamp_ns(data))
            self.publishers_by_topic[msg.topic].publish(data)
            count += 1
        self.get_logger().info(f"bag ended after {count} messages; shutting down")

    def _frame_interval(self, key: tuple[int, int], decided: dict[tuple[int, int], bool]
                        ) -> float:
        """Seconds from the previous frame to frame ``key`` at the replay rate (0 for a
        loop's first frame): the expected wait for the next one."""
        prev = next(reversed(decided), None)
        if prev is None or prev[0] != key[0]:
            return 0.0
        return max(0.0, (key[1] - prev[1]) * 1e-9 / self.replay.rate)

    def release(self) -> None:
        """Close the bag."""
        self.replay.close()


def main(args: list[str] | None = None) -> int:
    """Run the node; the exit code says how it ended (0 ok, 1 bag error, 2 parameters)."""
    return run(BagSourceNode, args)
