"""``extract-frames`` and ``finetune`` (needs the ``train`` extra: PyTorch and onnx).

The end-to-end test runs both commands on a real video with small counts: the frames
picked, the DeepLabCut folder written, the model's predictions accepted as the lab's
labels (as a labeller who changes nothing would save them) plus a point of the lab's own
between the ears, a short fine-tuning, and the fine-tuned model in eval-2d and analyze.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch", reason="the train extra (PyTorch) is not installed")
pytest.importorskip("onnx", reason="the train extra (onnx) is not installed")

from mouse_lifter_ros.cli import main  # noqa: E402
from mouse_lifter_ros.core.body import KEYPOINTS  # noqa: E402
from mouse_lifter_ros.core.democlip import write_demo_clip  # noqa: E402
from mouse_lifter_ros.core.errors import InputError, ParameterError  # noqa: E402
from mouse_lifter_ros.core.keypoints import (  # noqa: E402
    DEFAULT_MODEL,
    SHIPPED_MODELS,
    KeypointModel,
    ModelError,
)
from mouse_lifter_ros.core.labels import (  # noqa: E402
    read_labels_file,
    write_labels,
    write_mirror_view,
)
from mouse_lifter_ros.training.finetune import (  # noqa: E402
    FinetuneConfig,
    check_config,
    finetune,
    resolve_parts,
    split_frames,
)
from mouse_lifter_ros.training.nets import (  # noqa: E402
    DetectorNet,
    KeypointNet,
    load_onnx_weights,
)

VIDEO = (Path(__file__).resolve().parents[2].parent / "shared" / "data" / "openfield-dlc"
         / "videos" / "openfield_m3v1.mp4")


@pytest.mark.parametrize(("net", "onnx", "shape"), [
    (KeypointNet, "keypoints.onnx", (1, 1, 160, 160)),
    (DetectorNet, "detector.onnx", (1, 1, 128, 160))])
def test_networks_read_back_from_the_shipped_onnx(net: type[torch.nn.Module], onnx: str,
                                                  shape: tuple[int, ...]) -> None:
    """The shipped files hold only ONNX (batch norm folded): read back, the PyTorch
    network computes what ONNX Runtime does."""
    import onnxruntime as ort

    path = DEFAULT_MODEL.parent / onnx
    model = net()
    load_onnx_weights(model, str(path))
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    with torch.no_grad():
        ref = [t.numpy() for t in model(torch.from_numpy(x))]
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": x})
    for a, b in zip(ref, got, strict=True):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-4


def test_held_out_frames_spread_over_the_sets() -> None:
    keys = [f"{s}/img{i}.png" for s in "abcd" for i in range(10)]
    train, held = split_frames(keys, None)
    assert len(held) == 8 and {k[0] for k in held} == set("abcd")
    assert not set(train) & set(held) and len(train) + len(held) == 40
    assert split_frames(keys[:8], None)[1] == []  # under 10 frames: none held out
    with pytest.raises(InputError, match="at least 4"):
        split_frames(keys[:6], 3)


def test_parts_mapped_added_and_refused() -> None:
    parts = ["NOSE", "HEAD", "TAIL", "objectA"]
    mapping, targets = resolve_parts(parts, KEYPOINTS, {"NOSE": "nose", "TAIL": "tail_base"},
                                     ["HEAD"])
    assert mapping == {"NOSE": "nose", "TAIL": "tail_base", "HEAD": "HEAD"}
    assert targets == [*KEYPOINTS, "HEAD"]
    with pytest.raises(InputError) as err:
        resolve_parts(parts, KEYPOINTS, {"NOSE": "nose"}, ["nose", "EAR", "NOSE"])
    msg = str(err.value)  # every problem at once
    assert "'EAR'" in msg and "already our keypoints" in msg and "both --map and --add" in msg


def test_config_problems_listed_and_the_shipped_model_kept(tmp_path: Path) -> None:
    cfg = FinetuneConfig(labels=(tmp_path,), out=DEFAULT_MODEL.parent, steps=-1, batch=1,
                         parts=("keypoints", "tail"), device="tpu")
    with pytest.raises(ParameterError) as err:
        check_config(cfg)
    msg = str(err.value)
    for text in ("steps=-1", "batch=1", "parts=", "device='tpu'", "shipped models"):
        assert text in msg, msg


def test_a_starting_model_not_ours_is_refused_naming_each_difference(tmp_path: Path) -> None:
    import shutil

    base = tmp_path / "base"
    shutil.copytree(DEFAULT_MODEL.parent, base)
    text = (base / "default.yaml").read_text().replace("nose", "snout").replace(
        "stride: 4", "stride: 8")
    (base / "default.yaml").write_text(text)
    cfg = FinetuneConfig(labels=(tmp_path,), out=tmp_path / "out", base=base / "default.yaml")
    with pytest.raises(ModelError) as err:
        finetune(cfg, say=lambda _: None)
    msg = str(err.value)
    for text in ("is not one train-2d or finetune wrote", "keypoints start ['snout'",
                 "output heatmap_offset stride 8"):
        assert text in msg, msg
    assert not cfg.out.exists()


@pytest.mark.skipif(not VIDEO.exists(), reason=f"real video absent: {VIDEO}")
def test_extract_frames_then_finetune_on_a_real_video(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project, out = tmp_path / "project", tmp_path / "model"
    rc = main(["extract-frames", str(VIDEO), "--out", str(project), "--count", "8",
               "--candidates", "40", "--bodyparts", "nose,left_ear,right_ear,tail_base",
               "--scorer", "me"])
    assert rc == 0, capsys.readouterr().err
    folder = project / "labeled-data" / VIDEO.stem
    assert len(list(folder.glob("img*.png"))) == 8
    config = yaml.safe_load((project / "config.yaml").read_text())
    assert config["bodyparts"] == ["nose", "left_ear", "right_ear", "tail_base"]
    assert config["scorer"] == "me" and str(VIDEO.resolve()) in config["video_sets"]
    report = capsys.readouterr().out
    assert report.count("diverse") == 6 and report.count("unsure") == 2, report
    # a second extraction into the same project would overwrite: refused, exit 2
    assert main(["extract-frames", str(VIDEO), "--out", str(project)]) == 2
    assert "exist already" in capsys.readouterr().err

    # The labeller saves the predictions as they are and adds a point between the ears.
    guess = read_labels_file(folder / "machinelabels-iter0.h5")
    assert np.isfinite(guess.xy).all(), guess.xy
    head = guess.xy[:, 1:3].mean(axis=1, keepdims=True)
    write_labels(folder, stem="CollectedData_me", scorer="me", images=guess.image_names,
                 bodyparts=[*guess.bodyparts, "HEAD"],
                 xy=np.concatenate([guess.xy, head], axis=1))

    rc = main(["finetune", "--labels", str(project), "--out", str(out), "--add", "HEAD",
               "--steps", "6", "--det-steps", "3", "--holdout", "2", "--windows", "16",
               "--detector-frames", "8", "--threads", "1"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "HEAD -> HEAD (new keypoint)" in text and "held-out frames (2)" in text, text
    spec = yaml.safe_load((out / "default.yaml").read_text())
    assert spec["keypoints"] == [*KEYPOINTS, "HEAD"]
    assert spec["training"]["added"]["HEAD"]["init_from"] in KEYPOINTS
    assert len(spec["training"]["holdout"]) == 2
    log = json.loads((out / "finetune_log.json").read_text())
    assert log["after"]["frames"] == 2 and log["seconds"] > 0

    model = KeypointModel(out / "default.yaml", threads=1)
    assert model.names == (*KEYPOINTS, "HEAD")
    # eval-2d takes the model and reads the map it was fine-tuned with
    assert main(["eval-2d", "--labels", str(project), "--model", str(out / "default.yaml"),
                 "--split", "holdout", "--json", "-"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["frames"] == 2 and set(res["keypoints"]) == {*guess.bodyparts, "HEAD"}
    # analyze --model, 2D: the DeepLabCut file has the lab's point beside ours
    import pandas as pd

    rc = main(["analyze", str(VIDEO), "--out", str(tmp_path / "an"), "--model",
               str(out / "default.yaml"), "--max-frames", "10", "--quiet"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    df = pd.read_hdf(tmp_path / "an" / f"{VIDEO.stem}.h5")
    assert "HEAD" in set(df.columns.get_level_values("bodyparts")) and len(df) == 10
    # and 3D, on the demo clip with its arena: the lifter takes our 14 by name
    clip = write_demo_clip(tmp_path / "clip", seconds=0.5)
    rc = main(["analyze", str(clip.video), "--arena", str(clip.arena), "--out",
               str(tmp_path / "an3d"), "--model", str(out / "default.yaml"), "--quiet"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["movies"][0]["mode"] == "3d", summary


MIRROR = VIDEO.parents[2] / "mirror-mouse-lp" / "CollectedData.csv"


@pytest.mark.skipif(not MIRROR.is_file(), reason="../shared/data/mirror-mouse-lp is not here")
def test_a_bottom_view_model_keeps_learning_views_from_below(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Fine-tuning the shipped bottom-view model on a rig's mirror view: its synthetic
    supervision is rendered from below (it was the top view's), and the model written
    is a bottom-view model."""
    (labels,) = write_mirror_view(MIRROR, rows=(170, None), suffix="_bot",
                                  out=tmp_path / "project")
    out, cache = tmp_path / "model", tmp_path / "cache"
    rc = main(["finetune", "--labels", str(labels), "--out", str(out),
               "--base", str(SHIPPED_MODELS["bottom"]),
               "--map", "nose=nose,tailBase=tail_base,paw2LF=left_forepaw",
               "--parts", "keypoints", "--steps", "4", "--holdout", "2", "--windows", "8",
               "--threads", "1", "--cache", str(cache)])
    assert rc == 0, capsys.readouterr()
    (windows,) = cache.iterdir()  # the keypoint windows only, seen from below
    assert windows.name.startswith("kp_windows_") and windows.stem.endswith("_bottom")
    assert KeypointModel(out / "default.yaml", threads=1).spec.view == "bottom"
