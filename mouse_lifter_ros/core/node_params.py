"""The parameters of every node, as data.

The nodes declare these (with descriptors built from them), ``config/params.yaml``
sets them, and the README's parameter table is checked against them by a test.
"""

from __future__ import annotations

from mouse_lifter_ros.core.flow import WHEN_BUSY
from mouse_lifter_ros.core.graph import (
    EXPECT_PUBLISHERS,
    FLOW_TOPICS,
    WAIT_FOR_NODES,
    parse_flow_topics,
    parse_topic_counts,
)
from mouse_lifter_ros.core.keypoints import DEVICES, P_CUTOFF
from mouse_lifter_ros.core.limits import FPS_RANGE, MAX_FRAME_SIDE, RATE_RANGE
from mouse_lifter_ros.core.params import (
    ParamSpec,
    at_least,
    between,
    half_open,
    non_empty,
    one_of,
    parses,
    rectangle_or_zeros,
)
from mouse_lifter_ros.core.recorder import FLUSH_PERIOD_S, MIN_FREE_MB
from mouse_lifter_ros.core.stimulus.loader import SPEC_FORMS, rule_params_problem, spec_problem
from mouse_lifter_ros.core.stimulus.regions import region_problem
from mouse_lifter_ros.core.tracking import REDETECT_EVERY, SCAN_EVERY
from mouse_lifter_ros.core.views import VIEWS


def _node_names(value: str) -> str | None:
    bad = [n for n in value.split() if not n.isidentifier()]
    return f"{', '.join(map(repr, bad))}: not node names" if bad else None


#: Every node but the sources: the start-up handshake (nodes/_ready.py).
_READY = ParamSpec(EXPECT_PUBLISHERS, "", "Start-up: say on graph_ready that this node is "
                   "ready once each of these subscriptions has matched this many publishers "
                   "(space-separated topic:count items); empty = never say so. The launch "
                   "files fill it in from config/graph.yaml", parses(parse_topic_counts),
                   "space-separated topic:count items, count >= 1; or empty")

#: The wait of a source node before its first frame (both source nodes).
_SOURCE_WAIT = (
    ParamSpec(WAIT_FOR_NODES, "", "Before the first frame, wait until each of these nodes "
              "(space-separated names, in the node's namespace) has said on graph_ready that "
              "its links are up; empty = none. The launch files fill it in with the graph's "
              "other nodes", _node_names, "space-separated node names; or empty"),
    ParamSpec("wait_timeout", 60.0, "Seconds to wait for wait_for_subscribers and "
              "wait_for_nodes; then the source starts anyway and logs what is missing",
              between(0.1, 3600.0), ">= 0.1 and <= 3600"),
    ParamSpec(FLOW_TOPICS, "", "Flow control: topics on which the perception stages publish "
              "one message per frame (space-separated topic:package/msg/Type items); a "
              "frame is in flight until each came back, and the next is sent only while "
              "fewer than max_in_flight are; empty = no flow control. The launch files fill "
              "it in", parses(parse_flow_topics),
              "space-separated topic:package/msg/Type items; or empty"),
    ParamSpec("max_in_flight", 1, "Flow control: frames sent and not yet back from every "
              "stage, at most", between(1, 16), ">= 1 and <= 16"),
)

CAMERA_PARAMS = (
    ParamSpec("source", "0", "Camera device index (0, 1, ...) or video file path",
              non_empty, "device index or existing video file"),
    ParamSpec("fps", 0.0, "Frames per second to deliver; 0 = the device default or the "
              "video file's own rate", between(*FPS_RANGE, or_zero=True),
              f"0, or >= {FPS_RANGE[0]:g} and <= {FPS_RANGE[1]:g}"),
    ParamSpec("width", 0, "Requested frame width, pixels (devices: asked of the driver; "
              "files: resized); 0 = native", between(0, MAX_FRAME_SIDE),
              f">= 0 and <= {MAX_FRAME_SIDE}"),
    ParamSpec("height", 0, "Requested frame height, pixels; 0 = native",
              between(0, MAX_FRAME_SIDE), f">= 0 and <= {MAX_FRAME_SIDE}"),
    ParamSpec("crop", [0, 0, 0, 0], "Crop rectangle [x, y, width, height] in pixels of the "
              "frame; all zeros = no crop", rectangle_or_zeros,
              "[x, y, width, height], x, y >= 0, width, height > 0, or all zeros", kind=int),
    ParamSpec("loop", False, "Video files: start again at the end instead of shutting down"),
    ParamSpec("encoding", "bgr8", "Published pixel format", one_of("bgr8", "rgb8", "mono8"),
              "bgr8, rgb8 or mono8"),
    ParamSpec("calibration_file", "", "Camera calibration YAML (camera_calibration format; "
              "path, file:// or package:// URL); empty = uncalibrated (K all zeros)"),
    ParamSpec("frame_id", "camera_optical_frame", "Frame of the images (REP-103 optical: "
              "z forward, x right, y down)", non_empty, "non-empty"),
    ParamSpec("wait_for_subscribers", 0, "Video files: wait until this many nodes subscribe "
              "to image_raw before the first frame", at_least(0), ">= 0"),
    *_SOURCE_WAIT,
    ParamSpec("when_busy", "skip", "Flow control, while max_in_flight frames are out: skip "
              "= send the frame when the stages free up before the next one is due, else "
              "drop it (a live camera cannot wait; counted), wait = video files only: hold "
              "it until the stages are free (every frame, slower than its rate)",
              one_of(*WHEN_BUSY), " or ".join(WHEN_BUSY)),
)

BAG_SOURCE_PARAMS = (
    ParamSpec("bag", "", "rosbag2 folder to replay (sqlite3 or MCAP)", non_empty,
              "an existing rosbag2 folder"),
    ParamSpec("image_topic", "/camera/image_raw", "Image topic in the bag "
              "(sensor_msgs/Image), published as image_raw", non_empty, "non-empty"),
    ParamSpec("camera_info_topic", "/camera/camera_info", "CameraInfo topic in the bag, "
              "published as camera_info; empty = none"),
    ParamSpec("rate", 1.0, "Playback speed factor (2 = twice as fast as recorded)",
              between(*RATE_RANGE), f">= {RATE_RANGE[0]:g} and <= {RATE_RANGE[1]:g}"),
    ParamSpec("start_offset", 0.0, "Seconds to skip at the start of the bag", at_least(0.0),
              ">= 0 and before the end of the bag"),
    ParamSpec("loop", False, "Start again at the end of the bag instead of shutting down"),
    ParamSpec("restamp", True, "Stamp headers with the time each frame is offered (a live "
              "camera's capture time; with when_busy wait, the time it goes out), false: "
              "keep the recorded stamps"),
    ParamSpec("wait_for_subscribers", 0, "Wait until this many nodes subscribe to "
              "image_raw before replaying", at_least(0), ">= 0"),
    *_SOURCE_WAIT,
    ParamSpec("when_busy", "wait", "Flow control, while max_in_flight frames are out: wait "
              "= hold the frame until the stages are free (every frame is processed; the "
              "replay falls behind its rate), skip = as a live camera must: send it when "
              "the stages free up before the next frame is due, else drop it (counted)",
              one_of(*WHEN_BUSY), " or ".join(WHEN_BUSY)),
)

MONITOR_PARAMS = (
    ParamSpec("report_period", 1.0, "Seconds between log lines",
              at_least(0.0, strict=True), "> 0"),
    ParamSpec("summary_file", "", "JSON file the totals are written to when the monitor "
              "stops (messages per topic, triggers on and off); empty = none"),
    _READY,
)

def _dims(value: int) -> str | None:
    return None if value in (2, 3) else "must be 2 or 3"


BEHAVIOR_PARAMS = (
    ParamSpec("model", "", "Behaviour model file (.npz; path, file:// or package:// URL); "
              "empty = the shipped model"),
    ParamSpec("dims", 3, "3: classify from 3D poses; 2: the 2D-only network (heights "
              "ignored)", _dims, "2 or 3"),
    ParamSpec("smoothing", 0.05, "Time constant of the exponential smoothing of the class "
              "probabilities, seconds; 0 = none", at_least(0.0), ">= 0"),
    ParamSpec("warmup", 0.5, "Seconds after a stream starts (or restarts) during which the "
              "label is 'unknown' (the 0.5 s window is not yet full of real poses); 0 = none",
              at_least(0.0), ">= 0"),
    _READY,
)

#: The keypoint and depth nodes' default ``niceness``: under overload (a camera faster than
#: the machine) it bounds the frame-to-Pose3D latency; the README's "Fast cameras" section
#: gives the measured figures.
PERCEPTION_NICENESS = 4

#: The live keypoint node's window scan period while the mouse is lost (``scan_every``):
#: rarer than ``analyze``'s :data:`~.tracking.SCAN_EVERY`, so that a graph at 30 fps on a
#: 2-core machine keeps its images while the mouse is out of sight (a scan costs most of
#: a frame's 33 ms); a lost mouse is searched for so three times a second.
LIVE_SCAN_EVERY = 10

KEYPOINT_PARAMS = (
    ParamSpec("model", "", "2D keypoint model description (.yaml beside its .onnx files; "
              "path, file:// or package:// URL); empty = the shipped model of the view"),
    ParamSpec("device", "auto", "Where ONNX Runtime runs the networks: auto = CUDA when "
              "available, else the CPU", one_of(*DEVICES),
              f"{', '.join(DEVICES[:-1])} or {DEVICES[-1]}"),
    ParamSpec("p_cutoff", P_CUTOFF, "Keypoints whose confidence is below this are published with "
              "x, y = NaN (their confidence kept)", between(0.0, 1.0), ">= 0 and <= 1"),
    ParamSpec("crop", [0, 0, 0, 0], "Search only this rectangle [x, y, width, height] of the "
              "image, pixels (the arena); all zeros = the whole image", rectangle_or_zeros,
              "[x, y, width, height], x, y >= 0, width, height > 0, or all zeros", kind=int),
    ParamSpec("threads", 0, "CPU threads of ONNX Runtime per network; 0 = its default "
              "(one per physical core)", between(0, 64), ">= 0 and <= 64"),
    ParamSpec("redetect_every", REDETECT_EVERY, "The mouse is searched for near where it was "
              "in the image before, and in the whole image when it is lost and at every N-th "
              "image; 1 = each image on its own", at_least(1), ">= 1"),
    ParamSpec("niceness", PERCEPTION_NICENESS, "How much lower this node's CPU priority is "
              "than the nodes after it (nice value added to each of its threads): when the "
              "machine is busy, the lifter finishes the pose in progress before the networks "
              "take the next frame's CPU, which bounds the latency; 0 = the same priority",
              between(0, 19), ">= 0 and <= 19"),
    ParamSpec("view", "", "Side the camera sees the mouse from: top, or bottom through a "
              "clear floor; it picks the shipped model, and a model of the other view is "
              "refused; empty = the arena_file's view, else top", one_of("", *VIEWS),
              f"{', '.join(VIEWS)} or empty"),
    ParamSpec("arena_file", "", "Arena calibration YAML (path, file:// or package:// URL), "
              "optional here: its view stands for an empty view; empty = none"),
    ParamSpec("tail_crop", False, "Cut the second crop around the tail where the model has "
              "one (its YAML's tail_crop): the tail's middle and tip are found about ten "
              "times as often, for 2-3 ms more per image; off by default, as a 30 fps graph "
              "on a 2-core machine cannot spare them (analyze and eval-3d use it)"),
    ParamSpec("turn_test", False, "Run each crop turned by quarter turns too where the model "
              "has a turn test (its YAML's turn_test): 8 network runs instead of 2, and the "
              "views that agree are averaged, so one view on the wrong spot moves nothing "
              "(real xmwell-oft frames: tail base 4.0 -> 3.0 px); about 6 ms more per crop, "
              "off by default for a 30 fps graph on a 2-core machine (analyze, eval-2d and "
              "eval-3d use it)"),
    ParamSpec("scan_every", LIVE_SCAN_EVERY, "While the mouse is lost, every N-th image is "
              "also searched window by window for a mouse too small or faint for the whole "
              "image (about 30 ms at 640x480 on a 2-core CPU); 0 = never (analyze: one "
              f"image in {SCAN_EVERY})", at_least(0), ">= 0"),
    _READY,
)

_ARENA = ParamSpec("arena_file", "", "Arena calibration YAML (mouse-lifter calibrate; path, "
                   "file:// or package:// URL): intrinsics and the camera's pose over the floor",
                   non_empty, "an arena calibration file")

DEPTH_PARAMS = (
    ParamSpec("model", "", "Depth model description (.yaml beside its .onnx; path, file:// "
              "or package:// URL); empty = the shipped model"),
    _ARENA,
    KEYPOINT_PARAMS[1],  # device
    KEYPOINT_PARAMS[4],  # threads
    KEYPOINT_PARAMS[5],  # redetect_every
    KEYPOINT_PARAMS[6],  # niceness
    _READY,
)

LIFTER_PARAMS = (
    _ARENA,
    ParamSpec("frame_id", "arena", "Frame of the poses and markers (REP-103: x, y on the "
              "floor, z up, metres)", non_empty, "non-empty"),
    ParamSpec("camera_frame", "camera_optical_frame", "Frame of the camera's images (the "
              "source's frame_id): the calibrated frame_id -> camera_frame transform is "
              "broadcast on /tf_static where tf2_ros is installed; empty: none"),
    ParamSpec("p_cutoff", P_CUTOFF, "Keypoints below this confidence are filled by the body model "
              "and published with valid = false", between(0.0, 1.0), ">= 0 and <= 1"),
    ParamSpec("body_scale", 0.0, "Size of this animal relative to the body model's adult "
              "(1 = nose to tail base 92 mm); 0 = estimate it from the first frames",
              at_least(0.0), ">= 0"),
    ParamSpec("iterations", 3, "Levenberg-Marquardt steps per frame (warm-started from the "
              "previous frame)", at_least(1), ">= 1"),
    ParamSpec("min_cutoff", 1.0, "One-euro filter: cut-off frequency at rest, Hz (lower = "
              "smoother, more lag when still)", at_least(0.0, strict=True), "> 0"),
    ParamSpec("beta", 60.0, "One-euro filter: how fast the cut-off rises with speed (higher = "
              "less lag when moving)", at_least(0.0), ">= 0"),
    ParamSpec("queue_size", 8, "Keypoint and depth messages held while waiting for their "
              "partner (older ones are dropped and counted)", at_least(1), ">= 1"),
    ParamSpec("markers", True, "Publish a MarkerArray skeleton for RViz on markers"),
    ParamSpec("diagnostics_period", 1.0, "Seconds between diagnostics messages",
              at_least(0.0, strict=True), "> 0"),
    _READY,
)

RECORDER_PARAMS = (
    ParamSpec("output_dir", "recordings", "Folder the files are written to (created if "
              "missing)", non_empty, "non-empty"),
    ParamSpec("prefix", "recording", "File name stem: <prefix>.h5 and <prefix>.csv "
              "(DeepLabCut), <prefix>_annotations.csv or .parquet", non_empty, "non-empty"),
    ParamSpec("annotations_format", "csv", "Format of the annotations table",
              one_of("csv", "parquet"), "csv or parquet"),
    ParamSpec("flush_period", FLUSH_PERIOD_S, "Seconds between appends to the .h5 of the "
              "rows held in memory (the CSVs are appended every row): a hard kill loses at "
              "most this much of the recording", at_least(0.0, strict=True), "> 0"),
    ParamSpec("min_free_mb", MIN_FREE_MB, "Free space output_dir needs at start-up, MB "
              "(otherwise the node stops with exit code 1); a 30 fps session writes about "
              "0.3 GB per hour", at_least(0.0), ">= 0"),
    ParamSpec("overwrite", False, "Replace existing files (otherwise they stop the node at "
              "start-up)"),
    ParamSpec("rosbag", False, "Also record the keypoints, pose, behavior and trigger topics "
              "as a rosbag2 folder <prefix>_bag (never written over)"),
    ParamSpec("rosbag_storage", "mcap", "Storage of that bag", one_of("mcap", "sqlite3"),
              "mcap or sqlite3"),
    ParamSpec("durability", "transient_local", "QoS durability of the subscriptions: "
              "transient_local also gets what our publishers still hold (their last 300 "
              "messages) when discovery matches them late; volatile for publishers that "
              "offer only volatile (transient_local cannot match them)",
              one_of("transient_local", "volatile"), "transient_local or volatile"),
    _READY,
)

#: The stimulus node passes these to :func:`.stimulus.loader.rule_from_params`, which
#: picks the rule and the parameters it takes.
STIMULUS_PARAMS = (
    ParamSpec("rule", "builtin:behavior", "The rule that fires triggers: a built-in one or "
              "a lab's own class (module path or .py file)", spec_problem, SPEC_FORMS),
    ParamSpec("rule_params", "", "A lab's own rule: its keyword arguments as a JSON object, "
              "e.g. {\"min_height\": 0.05}; empty = none", rule_params_problem,
              "empty or a JSON object"),
    ParamSpec("behavior", "rearing", "builtin:behavior: the behaviour class to watch (one of "
              "the classifier's classes)", non_empty, "non-empty"),
    ParamSpec("min_probability", 0.6, "builtin:behavior: fires when the class's probability "
              "is above this", half_open(0.0, 1.0), ">= 0 and < 1"),
    ParamSpec("min_frames", 3, "Consecutive frames the condition must hold before the "
              "stimulus turns on (builtin:region: also off)", at_least(1), ">= 1"),
    ParamSpec("refractory", 0.0, "builtin:behavior: seconds after an off trigger before the "
              "next on trigger", at_least(0.0), ">= 0"),
    ParamSpec("keypoint", "spine_center", "builtin:region: the keypoint that enters the region",
              non_empty, "non-empty"),
    ParamSpec("region", [0.0, 0.0, 0.1], "builtin:region: arena floor region, metres: "
              "[cx, cy, r] circle, [x0, y0, x1, y1] rectangle or [x1, y1, x2, y2, x3, y3, ...] "
              "polygon (arena frame, origin at the centre)", region_problem,
              "3 (circle), 4 (rectangle) or an even number >= 6 (polygon) of finite numbers",
              kind=float),
    ParamSpec("queue_size", 4, "Frames held while the rule is busy; when full, the oldest "
              "is dropped (counted)", at_least(1), ">= 1"),
    _READY,
)

#: Parameters by executable, for documentation and checks.
NODE_PARAMS = {
    "camera_node": CAMERA_PARAMS,
    "bag_source_node": BAG_SOURCE_PARAMS,
    "monitor_node": MONITOR_PARAMS,
    "keypoint_node": KEYPOINT_PARAMS,
    "depth_node": DEPTH_PARAMS,
    "lifter_node": LIFTER_PARAMS,
    "behavior_node": BEHAVIOR_PARAMS,
    "stimulus_node": STIMULUS_PARAMS,
    "recorder_node": RECORDER_PARAMS,
}
