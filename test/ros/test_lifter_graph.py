"""The 3D path over DDS, in real node processes: depth_node and lifter_node.

The replay graph (bag_source -> keypoint, depth -> lifter) plays the demo clip with its
recorded stamps: a Pose3D must come for every frame, with that frame's stamp, near the
clip's ground truth (demo_truth.csv), with markers and diagnostics beside it. The lifter
alone is then fed hand-made keypoints and depth (a known body pose over the demo
arena): its pose must match, an unpaired message must be dropped and counted, a wrong
depth encoding skipped. Last the start-up errors: no arena file, a missing one, a
corrupt depth model.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

msgs = pytest.importorskip("sensor_msgs.msg", reason="sensor_msgs (ROS 2) is not installed")

from conftest import (  # noqa: E402
    Listener,
    demo_truth,
    failed_exits,
    prime,
    run_alone,
    to_time,
    wait_matched,
    write_params,
)
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from mouse_lifter_ros.msg import Keypoints2D, Pose3D  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from mouse_lifter_ros.core.body import (  # noqa: E402
    KEYPOINTS,
    MouseShape,
    Pose,
    forward_kinematics,
)
from mouse_lifter_ros.core.calibration import camera_info_fields  # noqa: E402
from mouse_lifter_ros.core.democlip import (  # noqa: E402
    DemoClip,
    demo_arena,
    demo_frames,
    write_demo_clip,
)
from mouse_lifter_ros.core.lifter import SURFACE_DEPTH  # noqa: E402
from mouse_lifter_ros.nodes._ros import (  # noqa: E402
    LATEST_FRAME_QOS,
    RELIABLE_QOS,
    stamp_ns,
    to_camera_info_msg,
    to_image_msg,
)
from mouse_lifter_ros.runner import GraphRun  # noqa: E402

SECONDS, FPS = 2.0, 30.0
START_NS = 1_700_000_000_000_000_000  # write_image_bag's first stamp


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> DemoClip:
    return write_demo_clip(tmp_path_factory.mktemp("clip"), seconds=SECONDS, fps=FPS)


def replay(listener: Listener, namespace: str, tmp_path: Path, clip: DemoClip,
           view: str = "top") -> tuple[list[Pose3D], dict[str, str], list[object], list[object]]:
    """Play ``clip`` through the replay graph's 3D path (the arena from the clip, so the
    shipped models of its view); check that every node exited 0 and that a Pose3D came
    for every frame, in order, with its recorded stamp. Returns those poses, the nodes'
    logs, and what came on markers and diagnostics."""
    ns = f"/{namespace}"
    poses = listener.subscribe(Pose3D, f"{ns}/pose", RELIABLE_QOS)
    markers = listener.subscribe(MarkerArray, f"{ns}/markers", RELIABLE_QOS)
    diags = listener.subscribe(DiagnosticArray, "/diagnostics", RELIABLE_QOS)
    # Recorded stamps; the bag starts once the keypoint and depth nodes and (last) this
    # test listen to the images; half speed, so that no node has to skip a frame.
    params = write_params(tmp_path / "p.yaml", {"bag_source": {
        "restamp": False, "wait_for_subscribers": 3, "rate": 0.5}})
    frame = next(iter(demo_frames(SECONDS, FPS, view=view)))
    with GraphRun("replay", arguments={"bag": str(clip.bag), "arena": str(clip.arena),
                                       "monitor": "false", "behavior": "false",
                                       "stimulus": "false"},  # the 3D path only
                  namespace=namespace, params_file=params) as run:
        pub = listener.node.create_publisher(msgs.Image, f"{ns}/camera/image_raw",
                                             LATEST_FRAME_QOS)
        wait_matched(listener, pub, [f"{ns}/pose"], timeout=40)
        # A round trip through all three nodes (the clip's first frame, stamps of 1970)
        # proves the reliable path to this reader before the bag starts.
        prime(listener, lambda i: pub.publish(to_image_msg(frame, "mono8", to_time(i + 1),
                                                           "cam")), poses, timeout=40)
        listener.subscribe(msgs.Image, f"{ns}/camera/image_raw", LATEST_FRAME_QOS)
        assert run.wait_any(timeout=60) == "bag_source", run.output("lifter")
        last = START_NS + round((clip.frames - 1) * 1e9 / FPS)
        listener.wait_for(lambda: stamp_ns(poses[-1][1].header.stamp) == last, 10)
        listener.wait_for(lambda: len(diags) > 0, 3)
        codes = run.stop()
        logs = {n: run.output(n) for n in ("keypoint", "depth", "lifter")}
    assert codes == {"bag_source": 0, "keypoint": 0, "depth": 0, "lifter": 0}, \
        failed_exits(codes, logs)
    assert "Traceback" not in "".join(logs.values())
    got = [m for _, m in poses if stamp_ns(m.header.stamp) >= START_NS]
    index = [round((stamp_ns(m.header.stamp) - START_NS) * FPS / 1e9) for m in got]
    # Every frame of the clip, in order, each once, stamped with its recorded stamp.
    assert index == list(range(clip.frames)), (index, logs["lifter"])
    assert all(stamp_ns(m.header.stamp) == START_NS + round(i * 1e9 / FPS)
               for m, i in zip(got, index, strict=True))
    for m in got:
        assert list(m.names) == list(KEYPOINTS) and m.header.frame_id == "arena"
        assert m.source_stamp == m.header.stamp
        assert len(m.valid) == len(m.confidence) == len(KEYPOINTS)
    assert f"({view} view)" in logs["keypoint"], logs["keypoint"]
    return got, logs, [m for _, m in markers], [d for _, d in diags]


def body_errors(got: list[Pose3D], clip: DemoClip) -> dict[str, float]:
    """Mean 3D error (mm) of the body keypoints where the clip shows them."""
    truth, visible = demo_truth(clip.truth)
    pred = np.array([[[p.x, p.y, p.z] for p in m.positions] for m in got])
    assert np.isfinite(pred).all()
    err = np.linalg.norm(pred - truth, axis=2) * 1e3  # mm
    body = [KEYPOINTS.index(k) for k in ("nose", "neck", "spine_center", "tail_base")]
    out = {KEYPOINTS[j]: float(np.mean(err[:, j][visible[:, j]])) for j in body}
    out["body"] = float(np.mean(err[:, body][visible[:, body]]))
    print(f"\nPose3D on the demo clip: {len(got)}/{clip.frames} frames; mean error mm: "
          + ", ".join(f"{k} {v:.1f}" for k, v in out.items()))
    return out


def test_replay_gives_a_pose_for_every_frame(listener: Listener, namespace: str,
                                             tmp_path: Path, clip: DemoClip) -> None:
    got, logs, markers, diags = replay(listener, namespace, tmp_path, clip)
    # The clip's body keypoints, where visible: within 15 mm on average.
    assert body_errors(got, clip)["body"] < 15.0
    # Markers: keypoints and skeleton in the arena frame; diagnostics with the figures.
    assert markers and len(markers[-1].markers) == 2
    assert markers[-1].markers[0].header.frame_id == "arena"
    status = [s for d in diags for s in d.status if "lifter" in s.name]
    assert status, [s.name for d in diags for s in d.status]
    keys = {kv.key for kv in status[-1].values}
    assert {"frame_rate_hz", "latency_p50_ms", "latency_p99_ms", "dropped_keypoints",
            "dropped_depth"} <= keys, keys
    assert re.search(r"total: frame_rate_hz [\d.]+, poses \d+", logs["lifter"]), logs["lifter"]



def test_replay_from_below_gives_a_pose_for_every_frame(listener: Listener, namespace: str,
                                                        tmp_path: Path,
                                                        tmp_path_factory: pytest.TempPathFactory
                                                        ) -> None:
    """The same clip filmed through a clear floor: the arena calibration's view makes
    the keypoint and depth nodes load the bottom-view models."""
    clip = write_demo_clip(tmp_path_factory.mktemp("bottom"), seconds=SECONDS, fps=FPS,
                           view="bottom")
    got, logs, _, _ = replay(listener, namespace, tmp_path, clip, view="bottom")
    assert "keypoints2d_bottom" in logs["keypoint"] and "bottom" in logs["depth"]
    assert body_errors(got, clip)["body"] < 20.0


def _hand_made(stamp: int, arena: object) -> tuple[Keypoints2D, object, object, np.ndarray]:
    """Keypoints, a depth window with its camera_info, and the true positions (14, 3) of a
    mouse of the default shape standing in the demo arena."""
    state = forward_kinematics(MouseShape(), Pose(position=np.array([0.05, -0.02, 0.012]),
                                                  heading=0.6))
    truth = state.keypoints
    px, z = arena.project(truth)  # type: ignore[attr-defined]
    x0, y0, w, h = 150, 90, 340, 300
    grid = arena.ray_grid()[y0:y0 + h, x0:x0 + w]  # type: ignore[attr-defined]
    depth = arena.depth_at_height(grid, 0.0).astype(np.float32)  # type: ignore[attr-defined]
    # a small patch of the body's surface over each keypoint: the keypoint's depth less
    # its depth under the surface (the lifter adds it back; paws: none)
    surface = np.nan_to_num([SURFACE_DEPTH["top"][k] for k in KEYPOINTS])
    for (u, v), d in zip(px, z - surface, strict=True):
        c, r = int(np.rint(u)) - x0, int(np.rint(v)) - y0
        depth[r - 2:r + 3, c - 2:c + 3] = d
    kp = Keypoints2D(names=list(KEYPOINTS), x=px[:, 0].astype(np.float32).tolist(),
                     y=px[:, 1].astype(np.float32).tolist(),
                     confidence=[0.9] * len(KEYPOINTS), image_width=640, image_height=480)
    kp.header.stamp = to_time(stamp)
    kp.header.frame_id = "cam"
    info = to_camera_info_msg(camera_info_fields(arena.intrinsics,  # type: ignore[attr-defined]
                                                 crop=(x0, y0, w, h)), to_time(stamp), "cam")
    image = to_image_msg(depth, "32FC1", to_time(stamp), "cam")
    return kp, info, image, truth


def test_lifter_alone_pairs_drops_and_skips(listener: Listener, namespace: str,
                                            tmp_path: Path) -> None:
    ns = f"/{namespace}"
    from mouse_lifter_ros.core.arena import floor_below, save_arena

    # the mouse stands on bedding 15 mm over the floor the file was calibrated on, and
    # the file says so: a lifter that ignored it would put every point 15 mm off
    arena = demo_arena()
    arena_file = tmp_path / "arena.yaml"

    save_arena(arena_file, floor_below(arena, 0.015))
    params = write_params(tmp_path / "p.yaml", {"lifter": {
        "arena_file": str(arena_file), "body_scale": 1.0, "queue_size": 4}})
    poses = listener.subscribe(Pose3D, f"{ns}/pose", RELIABLE_QOS)
    kp_pub = listener.node.create_publisher(Keypoints2D, f"{ns}/keypoints", RELIABLE_QOS)
    info_pub = listener.node.create_publisher(msgs.CameraInfo, f"{ns}/depth/camera_info",
                                              LATEST_FRAME_QOS)
    depth_pub = listener.node.create_publisher(msgs.Image, f"{ns}/depth/image",
                                               LATEST_FRAME_QOS)

    def send(stamp: int, *, depth: bool = True, keypoints: bool = True,
             encoding: str = "32FC1") -> np.ndarray:
        kp, info, image, truth = _hand_made(stamp, arena)
        if depth:
            info_pub.publish(info)
            if encoding != "32FC1":
                image = to_image_msg(np.zeros((4, 4), np.uint16), encoding, to_time(stamp),
                                     "cam")
            depth_pub.publish(image)
        if keypoints:
            kp_pub.publish(kp)
        return truth

    with GraphRun("lifter", nodes=["lifter"], namespace=namespace, params_file=params) as run:
        wait_matched(listener, kp_pub, [f"{ns}/pose"], timeout=30)
        prime(listener, lambda k: send(1_000_000 * (k + 1)), poses)
        listener.wait_for(lambda: False, 0.3)
        n = len(poses)
        t0 = START_NS
        truths = []
        for i in range(10):  # paired frames, 30 fps
            truths.append(send(t0 + i * 33_333_333))
            listener.wait_for(lambda k=i: len(poses) >= n + k + 1, 5)
        for i in range(10, 16):  # keypoints whose depth never comes: dropped, counted
            send(t0 + i * 33_333_333, depth=False)
        send(t0 + 16 * 33_333_333, encoding="16UC1")  # skipped with a warning
        listener.wait_for(lambda: False, 1.0)
        codes = run.stop()
        log = run.output("lifter")
    assert codes["lifter"] == 0, log
    got = [m for _, m in poses[n:]]
    assert [stamp_ns(m.header.stamp) for m in got] == [t0 + i * 33_333_333 for i in range(10)]
    pred = np.array([[p.x, p.y, p.z] for p in got[-1].positions])
    err_mm = np.linalg.norm(pred - truths[-1], axis=1) * 1e3
    assert np.mean(err_mm) < 5.0, np.round(err_mm, 1)
    assert got[-1].surface_height == pytest.approx(0.015) and "bedding 15 mm" in log
    # every keypoint observed, but those whose depth is the body model's (from above: the
    # paws, under the belly, and the tail's middle and tip, too thin for the depth map)
    model = [i for i, k in enumerate(KEYPOINTS) if np.isnan(SURFACE_DEPTH["top"][k])]
    assert {KEYPOINTS[i] for i in model} >= {"left_forepaw", "right_hindpaw", "tail_tip"}
    assert [v for i, v in enumerate(got[-1].valid) if i not in model] == \
        [True] * (len(KEYPOINTS) - len(model))
    assert not any(got[-1].valid[i] for i in model)
    assert "frame skipped: depth image encoding '16UC1': 32FC1 needed" in log, log
    m = re.search(r"dropped_keypoints (\d+)", log)
    assert m and int(m.group(1)) >= 6 - 4, log  # the queue holds 4; the rest dropped


def test_start_up_errors(namespace: str, ros_domain: int, tmp_path: Path) -> None:
    code, out = run_alone("lifter", namespace, write_params(tmp_path / "a.yaml", {}),
                          timeout=30)
    assert code == 2 and "arena_file = ''" in out and "must not be empty" in out, out
    missing = tmp_path / "nope.yaml"
    code, out = run_alone("depth", namespace, write_params(
        tmp_path / "b.yaml", {"depth": {"arena_file": str(missing)}}), timeout=30)
    assert code == 1 and str(missing) in out, out
    arena_file = tmp_path / "arena.yaml"
    from mouse_lifter_ros.core.arena import save_arena

    save_arena(arena_file, demo_arena())
    bad = tmp_path / "depth.yaml"
    bad.write_text("name: broken\nonnx: missing.onnx\n")
    code, out = run_alone("depth", namespace, write_params(tmp_path / "c.yaml", {"depth": {
        "arena_file": str(arena_file), "model": str(bad)}}), timeout=30)
    assert code == 1 and str(bad) in out and "missing.onnx" in out, out
    assert "Traceback" not in out
