"""A recorded rosbag2 (sqlite3 or MCAP) into the mouse_lifter_ros pipeline.

    ros2 launch mouse_lifter_ros replay.launch.py bag:=/data/session1_bag rate:=1.0

The nodes, parameters and remappings come from config/graph.yaml (graph `replay`);
`ros2 launch mouse_lifter_ros replay.launch.py --show-args` lists the arguments.
"""

from mouse_lifter_ros.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description("replay")
