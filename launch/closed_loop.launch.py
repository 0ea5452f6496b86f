r"""A closed-loop session: camera -> 3D pose -> behaviour -> stimulus trigger, recorded.

    ros2 launch mouse_lifter_ros closed_loop.launch.py source:=0 arena:=/path/arena.yaml \
        calibration:=/path/camera.yaml record_prefix:=mouse12_day3
    ros2 launch mouse_lifter_ros closed_loop.launch.py source:=0 arena:=/path/arena.yaml \
        rule:=/path/my_rules.py:NearObject rule_params:='{"x": 0.1}' record:=false

The stimulus node publishes `trigger` (std_msgs/Bool, True = on) for a lab's TTL or
LED bridge node to act on; by default it fires while the mouse rears (the behaviour
node's rearing probability above 0.6 for 3 frames). The recorder writes the session to
recordings/<record_prefix>.h5, .csv and _annotations.csv. The nodes, parameters and
remappings come from config/graph.yaml (graph `closed_loop`);
`ros2 launch mouse_lifter_ros closed_loop.launch.py --show-args` lists the arguments.
"""

from mouse_lifter_ros.launch_support import graph_launch_description


def generate_launch_description():
    return graph_launch_description("closed_loop")
