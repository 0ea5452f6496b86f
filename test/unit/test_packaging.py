"""setup.py builds a ROS-free wheel of the core with the `mouse-lifter` command."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_holds_core_and_command(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=120, cwd=tmp_path)
    (wheel,) = tmp_path.glob("mouse_lifter_ros-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "mouse-lifter = mouse_lifter_ros.cli:main" in zf.read(entry_points).decode()
        metadata = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
    for module in ("core/images.py", "core/calibration.py", "core/video.py", "core/bag.py",
                   "core/synth/render.py", "cli/__init__.py", "cli/analyze.py",
                   "models/behavior/default.npz",
                   "models/behavior/MODEL_CARD.md", "core/keypoints.py",
                   "models/keypoints2d/default.yaml", "models/keypoints2d/keypoints.onnx",
                   "models/keypoints2d/detector.yaml", "models/keypoints2d/detector.onnx",
                   "models/keypoints2d/MODEL_CARD.md", "models/depth/default.yaml",
                   "models/depth/depth.onnx", "models/depth/MODEL_CARD.md",
                   "models/body/pose_prior.npz"):
        assert f"mouse_lifter_ros/{module}" in names
    # The pipeline's requirements are ROS-free and torch is only the training extra.
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist")]
    assert not any("rclpy" in r for r in requires)
    assert all("extra ==" in r for r in requires if "torch" in r)
    assert any(r.startswith("Requires-Dist: onnxruntime") and "extra" not in r
               for r in requires)
