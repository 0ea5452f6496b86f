"""Each stage's counts on ``/diagnostics`` (``diagnostic_msgs/DiagnosticArray``).

The source (frames offered, sent, skipped), the keypoint and depth nodes (frames in, out,
skipped) and the lifter (poses, pairs dropped) each publish one ``DiagnosticStatus``
named ``<fully qualified node name>: <stage>`` every ``period`` seconds; the monitor reads
them back to report every stage of its namespace side by side, and ``rqt_robot_monitor``
or a diagnostic aggregator shows them as any other ROS diagnostics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

DIAGNOSTICS_TOPIC = "/diagnostics"
DIAGNOSTICS_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                             reliability=ReliabilityPolicy.RELIABLE)
#: A stage's report: (all well, one-line message, values by key).
Report = tuple[bool, str, Mapping[str, object]]


def stage_status(node: Node, stage: str, report: Report) -> DiagnosticStatus:
    """The ``DiagnosticStatus`` of ``node``'s ``stage`` (OK or WARN) from its report."""
    ok, message, values = report
    return DiagnosticStatus(
        level=DiagnosticStatus.OK if ok else DiagnosticStatus.WARN,
        name=f"{node.get_fully_qualified_name()}: {stage}", hardware_id=stage,
        message=message, values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])


def publish_stage(node: Node, stage: str, report: Callable[[], Report],
                  period: float = 1.0) -> Callable[[float], bool]:
    """Publish ``report()`` as ``node``'s ``stage`` on /diagnostics every ``period`` s.

    Returns ``final(timeout_s)``: publish the report once more now and wait up to
    ``timeout_s`` for every subscriber to have it (True when all did), for a stage that
    ends before the graph (a source at the end of its file), whose last periodic report
    would otherwise stand for its totals.
    """
    pub = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, DIAGNOSTICS_QOS)

    def tick() -> None:
        msg = DiagnosticArray(status=[stage_status(node, stage, report())])
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)

    def final(timeout_s: float) -> bool:
        tick()
        return pub.wait_for_all_acked(Duration(nanoseconds=int(timeout_s * 1e9)))

    node.create_timer(period, tick)
    return final
