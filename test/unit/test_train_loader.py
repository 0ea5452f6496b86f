"""Training on a chosen device with batches built by worker processes
(``mouse_lifter_ros.training.loader``; needs the ``train`` extra: PyTorch)."""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mouse_lifter_ros.cli import main
from mouse_lifter_ros.core.body import KEYPOINTS

# Not importorskip: a module-level skip raised while launch_testing's pytest plugin looks
# into every module ends the whole session's collection.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("onnx") is None,
    reason="the train extra (PyTorch, onnx) is not installed")



def has_cuda() -> bool:
    """Whether PyTorch is installed and sees a CUDA device."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def fake_windows(n: int = 6) -> dict[str, np.ndarray[Any, Any]]:
    """Keypoint windows as ``synth_keypoint_windows`` gives them, without rendering."""
    rng = np.random.default_rng(5)
    return {"images": rng.integers(0, 255, (n, 224, 224), dtype=np.uint8),
            "keypoints": rng.uniform(70, 150, (n, len(KEYPOINTS), 2)).astype(np.float32),
            "flags": np.full((n, len(KEYPOINTS)), 2, np.uint8)}


def loaded(workers: int, steps: int = 5) -> list[tuple[Any, ...]]:
    from mouse_lifter_ros.training.loader import BatchLoader
    from mouse_lifter_ros.training.train2d import kp_batch

    windows = fake_windows()
    seeds = np.random.SeedSequence(11).spawn(steps)
    with BatchLoader(lambda r: kp_batch(windows, None, 3, 0, r), seeds,
                     workers=workers) as batches:
        return list(batches)


def test_the_same_seed_gives_the_same_batches_with_any_number_of_workers() -> None:
    import torch

    inline, parallel = loaded(0), loaded(2)
    assert len(inline) == len(parallel) == 5
    for a, b in zip(inline, parallel, strict=True):
        assert len(a) == len(b) == 5  # images, heatmaps, offsets, offset mask, weights
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(inline[0][0], inline[1][0])  # each batch draws its own


def test_workers_end_with_the_phase_and_on_an_error() -> None:
    import torch

    from mouse_lifter_ros.training.loader import BatchLoader

    def make(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        value = float(rng.random())
        if value > 0.8:
            raise ValueError(f"bad batch {value}")
        return (torch.full((2,), value),)

    seeds = np.random.SeedSequence(0).spawn(40)  # some of them draw > 0.8
    with pytest.raises(ValueError, match="bad batch"), \
            BatchLoader(make, seeds, workers=2) as batches:
        for _ in batches:
            pass
    assert not multiprocessing.active_children()
    # an error in the training step (the consumer) stops them too
    with pytest.raises(RuntimeError, match="step failed"), \
            BatchLoader(lambda r: (torch.zeros(2),), seeds, workers=2) as batches:
        next(batches)
        raise RuntimeError("step failed")
    assert not multiprocessing.active_children()


def test_ctrl_c_ends_the_training_and_its_workers(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while the
    workers build slow batches: the command ends and leaves no process behind."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing, time
        import numpy as np, torch
        from mouse_lifter_ros.training.loader import BatchLoader

        def slow(rng):
            time.sleep(0.3)
            return (torch.zeros(3),)

        with BatchLoader(slow, np.random.SeedSequence(0).spawn(1000), workers=2) as b:
            for i, _ in enumerate(b):
                if i == 0:
                    pids = [p.pid for p in multiprocessing.active_children()]
                    print(*pids, flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2, proc.stderr.read() if proc.stderr else ""
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err, err
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if Path(f"/proc/{p}").exists()
                 and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]]
        time.sleep(0.1)
    assert not alive, f"worker processes left running: {alive}"


@pytest.mark.timeout(60)
def test_workers_fork_from_a_process_whose_opencv_pool_has_run() -> None:
    """The workers are forked from a process whose OpenCV thread pool has threads: a
    child that inherits the pool hangs when it sets OpenCV's threads (as the first
    version of the loader did in every worker: finetune hung)."""
    import cv2
    import torch

    from mouse_lifter_ros.training.loader import BatchLoader

    img = np.random.default_rng(0).random((1000, 1000)).astype(np.float32)

    def make(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        cv2.setNumThreads(1)
        out = cv2.warpAffine(img, np.array([[0.9, 0.1, 3], [0.1, 0.9, 2]]), (500, 500))
        return (torch.from_numpy(cv2.resize(out, (100, 100))),)

    for _ in range(5):
        cv2.warpAffine(img, np.array([[0.9, 0.1, 3], [0.1, 0.9, 2]]), (1000, 1000))
        cv2.resize(img, (600, 600))
        with BatchLoader(make, np.random.SeedSequence(0).spawn(2), workers=2) as batches:
            assert len(list(batches)) == 2


def test_tiny_train_2d_with_two_loader_workers_writes_a_model(tmp_path: Path) -> None:
    from mouse_lifter_ros.core.keypoints import KeypointModel

    out = tmp_path / "m"
    rc = main(["train-2d", "--out", str(out), "--windows", "8", "--detector-frames", "8",
               "--det-steps", "3", "--kp-steps", "3", "--finetune-steps", "0",
               "--workers", "1", "--cache", str(tmp_path / "cache"), "--device", "cpu",
               "--loader-workers", "2"])
    assert rc == 0
    kp = KeypointModel(out / "default.yaml", threads=1)(np.full((480, 640), 200, np.uint8))
    assert kp.xy.shape == (14, 2)
    log = (out / "training_log.json").read_text()
    assert '"device": "cpu"' in log and '"loader_workers": 2' in log


def test_train_depth_gives_the_same_weights_with_0_and_2_loader_workers(
        tmp_path: Path) -> None:
    import torch

    from mouse_lifter_ros.core.democlip import demo_arena
    from mouse_lifter_ros.core.depth import DepthModel

    cache = tmp_path / "cache"
    for n in (0, 2):
        rc = main(["train-depth", "--out", str(tmp_path / f"d{n}"), "--crops", "6",
                   "--val", "2", "--steps", "3", "--workers", "1", "--cache", str(cache),
                   "--device", "cpu", "--loader-workers", str(n)])
        assert rc == 0
    DepthModel(tmp_path / "d2" / "default.yaml", arena=demo_arena(), threads=1)
    a = torch.load(tmp_path / "d0" / "depth.pt", weights_only=True)
    b = torch.load(tmp_path / "d2" / "depth.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.skipif(has_cuda(), reason="a CUDA device is here: --device cuda is allowed")
@pytest.mark.parametrize("command", ["train-2d", "train-depth", "finetune"])
def test_cuda_without_a_cuda_device_is_refused_before_any_work(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = ["--labels", str(tmp_path)] if command == "finetune" else []
    out = tmp_path / "out"
    rc = main([command, *labels, "--out", str(out), "--device", "cuda"])
    err = capsys.readouterr().err
    assert rc == 2
    # one message: the option, the value, what is allowed here
    assert err.count("error:") == 1, err
    assert "device='cuda' (--device)" in err and "sees no CUDA device" in err, err
    assert "allowed here: auto, cpu" in err, err
    assert not out.exists()  # nothing rendered or written


def test_bad_loader_workers_are_refused(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    rc = main(["train-depth", "--out", str(tmp_path / "o"), "--loader-workers", "-1"])
    assert rc == 2
    assert "loader_workers=-1 (--loader-workers)" in capsys.readouterr().err


def test_auto_picks_cuda_only_where_there_is_one() -> None:
    import torch

    from mouse_lifter_ros.training.loader import default_loader_workers, training_device

    assert training_device("t", "auto", 0) == ("cuda" if torch.cuda.is_available()
                                               else "cpu")
    assert training_device("t", "cpu", 3) == "cpu"
    assert 0 <= default_loader_workers() <= 4


@pytest.mark.skipif(not has_cuda(),
                    reason="no CUDA device: the GPU path (pinned memory, AMP) is not run")
def test_tiny_depth_training_on_cuda_with_amp(tmp_path: Path) -> None:
    """Where there is a GPU: train-depth on cuda with mixed precision and loader workers
    writes a model whose exported network runs on the CPU."""
    from mouse_lifter_ros.core.democlip import demo_arena
    from mouse_lifter_ros.core.depth import DepthModel

    rc = main(["train-depth", "--out", str(tmp_path / "d"), "--crops", "6", "--val", "2",
               "--steps", "4", "--workers", "1", "--device", "cuda", "--amp",
               "--loader-workers", "2"])
    assert rc == 0
    assert '"device": "cuda"' in (tmp_path / "d" / "training_log.json").read_text()
    DepthModel(tmp_path / "d" / "default.yaml", arena=demo_arena(), threads=1)
