"""A model written by ``mouse-lifter finetune`` in the replay graph (bag_source ->
keypoint, depth -> lifter), in real node processes.

The model is fine-tuned here, briefly, on frames of the demo clip picked by
``extract-frames``, with the starting model's predictions accepted as labels and a point
of the lab's own between the ears (a 15th keypoint, ``HEAD``). The keypoint node takes
it with ``model:=``; it must publish all 15 names, and the lifter, which takes our 14 by
name, a pose for every frame near the clip's ground truth.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

msgs = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs (ROS 2) is not installed")
# Not importorskip: a module-level skip raised while launch_testing's pytest plugin looks
# into every module ends the whole session's collection (the Jazzy run has no torch).
pytestmark = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                reason="the train extra (PyTorch) is not installed")

from conftest import (  # noqa: E402
    Listener,
    demo_truth,
    failed_exits,
    prime,
    to_time,
    wait_matched,
    write_params,
)
from mouse_lifter_ros.msg import Keypoints2D, Pose3D  # noqa: E402

from mouse_lifter_ros.core.body import KEYPOINTS  # noqa: E402
from mouse_lifter_ros.core.democlip import DemoClip, demo_frames, write_demo_clip  # noqa: E402
from mouse_lifter_ros.core.extract_frames import MACHINE_LABELS, extract_frames  # noqa: E402
from mouse_lifter_ros.core.keypoints import KeypointModel  # noqa: E402
from mouse_lifter_ros.core.labels import read_labels_file, write_labels  # noqa: E402
from mouse_lifter_ros.nodes._ros import (  # noqa: E402
    LATEST_FRAME_QOS,
    RELIABLE_QOS,
    stamp_ns,
    to_image_msg,
)
from mouse_lifter_ros.runner import GraphRun  # noqa: E402

SECONDS, FPS = 1.0, 30.0
START_NS = 1_700_000_000_000_000_000  # write_image_bag's first stamp


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> DemoClip:
    return write_demo_clip(tmp_path_factory.mktemp("clip"), seconds=SECONDS, fps=FPS)


@pytest.fixture(scope="module")
def model(clip: DemoClip, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model fine-tuned for a few batches on 6 frames of the clip (+ HEAD)."""
    from mouse_lifter_ros.training.finetune import FinetuneConfig, finetune

    root = tmp_path_factory.mktemp("finetune")
    extract_frames([clip.video], root / "project", KeypointModel(threads=1), count=6,
                   candidates=15, bodyparts=["nose", "left_ear", "right_ear", "tail_base"])
    folder = root / "project" / "labeled-data" / clip.video.stem
    guess = read_labels_file(folder / f"{MACHINE_LABELS}.h5")
    head = np.nanmean(guess.xy[:, 1:3], axis=1, keepdims=True)
    write_labels(folder, stem="CollectedData_lab", scorer="lab", images=guess.image_names,
                 bodyparts=[*guess.bodyparts, "HEAD"],
                 xy=np.concatenate([guess.xy, head], axis=1))
    out = root / "model"
    finetune(FinetuneConfig(labels=(root / "project",), out=out, add=("HEAD",), steps=6,
                            det_steps=3, windows=16, detector_frames=8, holdout=0,
                            threads=1), say=lambda _: None)
    return out / "default.yaml"


def test_finetuned_model_in_the_replay_graph(listener: Listener, namespace: str,
                                             tmp_path: Path, clip: DemoClip,
                                             model: Path) -> None:
    ns = f"/{namespace}"
    poses = listener.subscribe(Pose3D, f"{ns}/pose", RELIABLE_QOS)
    keypoints = listener.subscribe(Keypoints2D, f"{ns}/keypoints", RELIABLE_QOS)
    params = write_params(tmp_path / "p.yaml", {
        "bag_source": {"restamp": False, "wait_for_subscribers": 3, "rate": 0.5},
        "keypoint": {"model": str(model)}})
    frame = next(iter(demo_frames(SECONDS, FPS)))
    with GraphRun("replay", arguments={"bag": str(clip.bag), "arena": str(clip.arena),
                                       "monitor": "false", "behavior": "false",
                                       "stimulus": "false"},
                  namespace=namespace, params_file=params) as run:
        pub = listener.node.create_publisher(msgs.Image, f"{ns}/camera/image_raw",
                                             LATEST_FRAME_QOS)
        wait_matched(listener, pub, [f"{ns}/pose"], timeout=40)
        prime(listener, lambda i: pub.publish(to_image_msg(frame, "mono8", to_time(i + 1),
                                                           "cam")), poses, timeout=40)
        listener.subscribe(msgs.Image, f"{ns}/camera/image_raw", LATEST_FRAME_QOS)
        assert run.wait_any(timeout=60) == "bag_source", run.output("lifter")
        last = START_NS + round((clip.frames - 1) * 1e9 / FPS)
        listener.wait_for(lambda: stamp_ns(poses[-1][1].header.stamp) == last, 10)
        codes = run.stop()
        logs = {n: run.output(n) for n in ("keypoint", "depth", "lifter")}
    assert codes == {"bag_source": 0, "keypoint": 0, "depth": 0, "lifter": 0}, \
        failed_exits(codes, logs)
    assert "Traceback" not in "".join(logs.values())
    assert f"model {model} (top view):" in logs["keypoint"], logs["keypoint"]
    kps = [m for _, m in keypoints if stamp_ns(m.header.stamp) >= START_NS]
    assert kps and all(list(m.names) == [*KEYPOINTS, "HEAD"] for m in kps)
    assert all(len(m.x) == len(m.confidence) == 15 for m in kps)
    got = [m for _, m in poses if stamp_ns(m.header.stamp) >= START_NS]
    index = [round((stamp_ns(m.header.stamp) - START_NS) * FPS / 1e9) for m in got]
    assert index == list(range(clip.frames)), (index, logs["lifter"])
    assert all(list(m.names) == list(KEYPOINTS) for m in got)
    truth, visible = demo_truth(clip.truth)
    pred = np.array([[[p.x, p.y, p.z] for p in m.positions] for m in got])
    err = np.linalg.norm(pred - truth, axis=2) * 1e3  # mm
    body = [KEYPOINTS.index(k) for k in ("nose", "neck", "spine_center", "tail_base")]
    # a few batches on its own predictions leave the model where it was: within the
    # 15 mm the shipped model's replay test asks for
    assert np.mean(err[:, body][visible[:, body]]) < 15.0, np.round(err[:, body], 1)
