"""A camera device or video file into the mouse_lifter_ros pipeline.

    ros2 launch mouse_lifter_ros live.launch.py source:=0 calibration:=/path/camera.yaml
    ros2 launch mouse_lifter_ros live.launch.py source:=/data/session1.mp4 namespace:=rig1

The nodes, parameters and remappings come from config/graph.yaml (graph `live`);
`ros2 launch mouse_lifter_ros live.launch.py --show-args` lists the arguments.
"""

from mouse_lifter_ros.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description("live")
