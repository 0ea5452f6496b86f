"""Batch analysis on Dask (core/batch.py): real clusters, real worker processes, real kills.

The main test runs four short demo clips (rendered by the synthetic engine, 3D with their
arena) on a LocalCluster of two worker processes through its scheduler address, cuts each
clip into ranges, SIGKILLs a worker while it runs one, and compares every output file
with a serial ``analyze`` of the same clips: same rows, same values, same bytes.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from test_tracking import eval3d_frames

from mouse_lifter_ros.core.analysis import (
    AnalysisOptions,
    Movie,
    analyze,
    load_models,
    observe,
    seam_problems,
    track_of,
)
from mouse_lifter_ros.core.batch import (
    MANIFEST,
    BatchOptions,
    _finish_task,
    _Job,
    analyze_batch,
    jobqueue_cluster,
    plan_chunks,
    save_observed,
)
from mouse_lifter_ros.core.democlip import DemoClip, write_demo_clip
from mouse_lifter_ros.core.errors import ParameterError
from mouse_lifter_ros.core.keypoints import load_model_spec

CLIP_S = 2.0  # 60 frames each
CHUNK = 25  # frames per range: 0-24, 25-49, 50-59 of each clip
RANGES = 3 * 4


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> list[DemoClip]:
    """Four different clips (seeds) of one camera, each in a folder named after it."""
    root = tmp_path_factory.mktemp("clips")
    out = []
    for seed in range(4):
        clip = write_demo_clip(root / f"s{seed}", seconds=CLIP_S, seed=seed)
        video = clip.video.rename(clip.video.with_name(f"mouse{seed}.mp4"))
        out.append(replace(clip, video=video))
    return out


def same_outputs(serial: Path, batch: Path) -> None:
    """Every file of the serial run is in the batch run with the same rows and values (the
    DeepLabCut .h5 compared as tables: HDF5 files carry their own write times), and the
    batch run wrote no other output than its own summary, manifest and work folder."""
    names = sorted(p.name for p in serial.iterdir())
    extra = {p.name for p in batch.iterdir()} - set(names)
    assert extra == {MANIFEST, "batch_summary.csv", "batch_summary.json", ".batch"}
    for name in names:
        a, b = serial / name, batch / name
        if name.endswith(".h5"):
            pd.testing.assert_frame_equal(pd.read_hdf(a), pd.read_hdf(b), check_exact=True)
        else:
            assert a.read_bytes() == b.read_bytes(), name


def kill_a_busy_worker(client: Client, out: Path, killed: dict[str, Any]) -> None:
    """Once some range is written and more are to come, SIGKILL a worker running one."""
    pids: dict[str, int] = client.run(os.getpid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        written = list(out.glob(".batch/*/frames-*.npz"))
        busy = [w for w, keys in client.processing().items()
                if any(str(k).startswith("observe-") for k in keys)]
        if written and busy and len(written) < RANGES:
            killed.update(pid=pids[busy[0]], written=len(written))
            os.kill(pids[busy[0]], signal.SIGKILL)
            return
        time.sleep(0.02)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.CRITICAL) as c:
        yield c


@pytest.fixture(scope="module")
def runs(clips: list[DemoClip], cluster: LocalCluster,
         tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    videos = [c.video for c in clips]
    serial = tmp_path_factory.mktemp("serial")
    options = AnalysisOptions(out=serial, arena=clips[0].arena, threads=1, progress=False)
    analyze(videos, options)
    out = tmp_path_factory.mktemp("batch")
    killed: dict[str, Any] = {}
    with Client(cluster) as client:
        watcher = threading.Thread(target=kill_a_busy_worker, args=(client, out, killed))
        watcher.start()
        notes: list[str] = []
        result = analyze_batch(videos, replace(options, out=out), notice=notes.append,
                               batch=BatchOptions(scheduler=cluster.scheduler_address,
                                                  chunk_frames=CHUNK))
        watcher.join()
    return {"serial": serial, "out": out, "result": result, "killed": killed,
            "notes": notes, "videos": videos, "options": options}


def test_killed_worker_mid_run_outputs_equal_a_serial_run(runs: dict[str, Any]) -> None:
    killed, result, out = runs["killed"], runs["result"], runs["out"]
    assert killed, "no worker was killed while it ran a range"
    assert 0 < killed["written"] < RANGES
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)
    assert result["failed"] == []
    assert [m["status"] for m in result["movies"]] == ["done"] * 4
    assert result["batch"]["tasks"] == RANGES + 4
    # the work folders keep each movie's track only: no range file, nothing half written
    assert sorted(p.name for p in out.glob(".batch/*/*")) == ["track.npz"] * 4
    assert len(list(out.glob(".batch/*"))) == 4
    same_outputs(runs["serial"], out)
    summary = pd.read_csv(out / "batch_summary.csv")
    assert list(summary["status"]) == ["done"] * 4
    assert list(summary["frames"]) == [60] * 4
    manifest = json.loads((out / MANIFEST).read_text())
    assert {e["status"] for e in manifest["movies"].values()} == {"done"}
    assert any(n.startswith("running on a scheduler tcp://") for n in runs["notes"])


def test_rerun_skips_finished_movies_and_redoes_a_changed_one(
        runs: dict[str, Any], cluster: LocalCluster) -> None:
    out, videos = runs["out"], runs["videos"]
    batch = BatchOptions(scheduler=cluster.scheduler_address, chunk_frames=CHUNK)
    options = replace(runs["options"], out=out)
    again = analyze_batch(videos, options, batch=batch, notice=lambda _: None)
    assert [m["status"] for m in again["movies"]] == ["skipped"] * 4
    assert again["batch"]["tasks"] == 0 and again["batch"]["ran_on"] == "nothing to run"
    same_outputs(runs["serial"], out)
    # a lost output file and a touched input: those two movies run again, alone
    (out / "mouse1_trajectory.png").unlink()
    os.utime(videos[2])
    third = analyze_batch(videos, options, batch=batch, notice=lambda _: None)
    assert [m["status"] for m in third["movies"]] == ["skipped", "done", "done", "skipped"]
    same_outputs(runs["serial"], out)
    assert len(list(out.glob(".batch/*"))) == 4  # the touched input's old work folder went


def test_a_range_replays_its_key_frames_through_the_keypoint_model(tmp_path: Path
                                                                   ) -> None:
    """Held-out sequence 13 of ``eval-3d --synthetic --seed 21``: on frame 0 the whole
    frame gives a cup, whose crop holds no keypoint, and the window scan finds the white
    mouse (``test_tracking.py``). A range from frame 2 feeds frames 0 and 1 to the tracker
    first; fed without the keypoint model's checks, the track stayed on the cup and the
    range lost the mouse on frame 2 and put its keypoints 18 px off after."""
    frames = eval3d_frames(21, 13, 6)
    path = tmp_path / "cup.avi"
    h, w = frames[0].image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"FFV1"), 30.0, (w, h))
    for s in frames:
        writer.write(s.image if s.image.ndim == 3 else cv2.cvtColor(s.image,
                                                                      cv2.COLOR_GRAY2BGR))
    writer.release()
    movie = Movie(path, "video", "cup")
    options = AnalysisOptions(out=tmp_path / "out", threads=1, progress=False)
    model, _ = load_models(load_model_spec(), None, options)
    whole = observe(movie, options, model, None, None)
    part = observe(movie, options, model, None, None, start=2)
    assert len(whole.times) == 6 and whole.found.all()
    assert (part.found == whole.found[2:]).all()
    assert (part.xy == whole.xy[2:]).all() and (part.confidence == whole.confidence[2:]).all()


def test_broken_video_is_reported_and_the_batch_goes_on(
        clips: list[DemoClip], tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 100)
    out = tmp_path / "out"
    notes: list[str] = []
    result = analyze_batch(
        [clips[0].video, broken],
        AnalysisOptions(out=out, threads=1, progress=False, max_frames=20),
        batch=BatchOptions(workers=1, chunk_frames=0, dashboard=None, nwb=True),
        notice=notes.append)
    assert result["failed"] == [str(broken)]
    good, bad = result["movies"]
    assert good["status"] == "done" and good["frames"] == 20
    assert Path(good["files"]["nwb"]).is_file() and Path(good["files"]["h5"]).is_file()
    assert bad["status"] == "failed" and f"'{broken}'" in bad["error"]
    assert "Traceback" not in bad["error"]
    assert any(n.startswith(f"{broken}: failed: SourceError") for n in notes)
    summary = json.loads((out / "batch_summary.json").read_text())
    assert [r["status"] for r in summary] == ["done", "failed"]
    table = pd.read_csv(out / "annotations.csv")
    assert len(table) == 20 and set(table["Movie number"]) == {0}


def test_ranges_join_into_one_pass_and_a_bad_seam_rereads_the_movie(
        clips: list[DemoClip], tmp_path: Path) -> None:
    movie = Movie(clips[0].video, "video", "mouse0")
    options = AnalysisOptions(out=tmp_path / "serial", threads=1, progress=False)
    model, _ = load_models(load_model_spec(), None, options)
    a = observe(movie, options, model, None, None, stop=CHUNK)
    b = observe(movie, options, model, None, None, start=CHUNK)
    whole = observe(movie, options, model, None, None)
    assert seam_problems([a, b]) == [] and len(b.times) == 60 - CHUNK
    joined = track_of([a, b], movie, options, model.names, None, None)
    one = track_of([whole], movie, options, model.names, None, None)
    for name in ("times", "xy", "likelihood", "found"):
        assert (getattr(joined, name) == getattr(one, name)).all(), name
    gap = observe(movie, options, model, None, None, start=CHUNK + 5)
    assert seam_problems([a, gap]) == [f"frame {CHUNK + 5}: follows frame {CHUNK - 1}"]
    assert b.seams[0] is not None
    wrong = replace(b, seams=((b.seams[0][0], "0" * 40), b.seams[1]))
    assert "read as another frame" in seam_problems([a, wrong])[0]
    # the engine's join, given a range whose first frame is not the one expected
    work = tmp_path / "work"
    work.mkdir()
    save_observed(work / "a.npz", a)
    save_observed(work / "b.npz", wrong)
    (tmp_path / "batch").mkdir()
    job = _Job(movie, replace(options, out=tmp_path / "batch"), work, tmp_path / "batch",
               False)
    result = _finish_task(job, [str(work / "a.npz"), str(work / "b.npz")])
    assert "read again from its start" in result["notes"][0]
    analyze([movie.path], options)
    pd.testing.assert_frame_equal(pd.read_hdf(tmp_path / "serial" / "mouse0.h5"),
                                  pd.read_hdf(result["files"]["h5"]), check_exact=True)


def test_plan_chunks() -> None:
    assert plan_chunks(100, chunk_frames=40) == [(0, 40), (40, 80), (80, None)]
    assert plan_chunks(100, chunk_frames=0) == [(0, None)]
    assert plan_chunks(None, chunk_frames=40) == [(0, None)]
    assert plan_chunks(30, chunk_frames=40) == [(0, None)]
    assert plan_chunks(100, chunk_frames=40, max_frames=50) == [(0, 40), (40, 50)]
    assert plan_chunks(None, chunk_frames=20, max_frames=50) == [(0, 20), (20, 40), (40, 50)]


def test_invalid_options_are_one_error_naming_each(clips: list[DemoClip],
                                                   tmp_path: Path) -> None:
    with pytest.raises(ParameterError) as err:
        analyze_batch([clips[0].video, tmp_path / "missing.mp4"],
                      AnalysisOptions(out=tmp_path, p_cutoff=2.0),
                      batch=BatchOptions(cluster="kubernetes", workers=0, chunk_frames=-1,
                                         retries=99, scheduler="localhost:8786",
                                         cluster_options={"queue": "x"}))
    text = str(err.value)
    for part in ("missing.mp4': does not exist", "--p-cutoff 2.0", "--cluster 'kubernetes': "
                 "one of local, slurm, pbs, sge, lsf", "--workers 0", "--chunk-frames -1",
                 "--retries 99", "--scheduler 'localhost:8786'",
                 "--cluster-options {'queue': 'x'}: only with --cluster"):
        assert part in text, part
    assert not (tmp_path / MANIFEST).exists()


def test_slurm_cluster_takes_the_options_into_its_job_script() -> None:
    cluster = jobqueue_cluster("slurm", {"queue": "short", "cores": 4, "memory": "8GB",
                                         "walltime": "01:30:00", "account": "lab42"})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p short", "#SBATCH -A lab42", "#SBATCH -t 01:30:00",
                 "--nworkers 4", "--nthreads 1"):
        assert line in script, (line, script)
    with pytest.raises(ParameterError, match=r"--cluster slurm --cluster-options .*refuses"):
        jobqueue_cluster("slurm", {"queue": "short", "no_such_option": 1})


def test_readme_jobqueue_example_configures_slurm(tmp_path: Path) -> None:
    """The README's jobqueue.yaml, as dask-jobqueue reads it, gives the job script it says."""
    import dask
    import yaml

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    text = readme.split("dask-jobqueue reads `~/.config/dask/jobqueue.yaml`", 1)[1]
    section = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])["jobqueue"]
    settings = {f"jobqueue.slurm.{k}": v for k, v in section["slurm"].items()}
    settings["jobqueue.slurm.log-directory"] = str(tmp_path / "logs")  # not /data here
    with dask.config.set(settings):
        cluster = jobqueue_cluster("slurm", {"walltime": "04:00:00"})
        try:
            script = cluster.job_script()
        finally:
            cluster.close()
    for line in ("#SBATCH -p cpu", "#SBATCH -A lab42", "#SBATCH -n 1", "#SBATCH --cpus-per-task=8",
                 "#SBATCH -t 04:00:00", "source /home/me/ws/install/setup.bash",
                 "--nworkers 8", "--nthreads 1", "--local-directory $TMPDIR"):
        assert line in script, (line, script)
