"""The one reader of DeepLabCut labelled frames (core/labels.py) and ``eval-2d`` over it:
every layout labs have, the errors of malformed files, and the per-set tables."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from mouse_lifter_ros.cli import main
from mouse_lifter_ros.core.body import KEYPOINTS
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.eval2d import evaluate_2d
from mouse_lifter_ros.core.keypoints import KeypointModel
from mouse_lifter_ros.core.labels import (
    label_map,
    read_labelled,
    read_labels_file,
    select_frames,
    unused_parts,
    write_labels,
    write_mirror_view,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
OPENFIELD = SHARED / "openfield-dlc" / "labeled" / "CollectedData.csv"
XMWELL = SHARED / "xmwell-oft" / "labeled-data"
MIRROR = SHARED / "mirror-mouse-lp" / "CollectedData.csv"
PARTS = ("nose", "tail_base", "HEAD")


def _folder(root: Path, name: str, n: int = 3, seed: int = 0) -> tuple[Path, np.ndarray]:
    """A labelled video folder root/name with n grey images and labels (n, 3, 2)."""
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    xy = rng.uniform(10, 90, (n, len(PARTS), 2))
    xy[0, 2] = np.nan  # one part not labelled in one frame
    names = [f"img{i:03d}.png" for i in range(n)]
    for name_ in names:
        cv2.imwrite(str(folder / name_), np.full((100, 120), 128, np.uint8))
    write_labels(folder, stem="CollectedData_me", scorer="me", images=names,
                 bodyparts=PARTS, xy=xy)
    return folder, xy


def test_csv_and_h5_hold_the_same_labels(tmp_path: Path) -> None:
    folder, xy = _folder(tmp_path, "sess1")
    for suffix in (".csv", ".h5"):
        s = read_labels_file(folder / f"CollectedData_me{suffix}")
        assert s.name == "sess1" and s.scorer == "me" and s.bodyparts == PARTS
        assert s.image_names == ("img000.png", "img001.png", "img002.png")
        np.testing.assert_allclose(s.xy, xy, equal_nan=True)
    # DeepLabCut 2.2+ writes three index columns; the CSV has them
    assert (folder / "CollectedData_me.csv").read_text().startswith("scorer,,,me,")


def test_old_single_index_column_csv(tmp_path: Path) -> None:
    folder = tmp_path / "labeled"
    folder.mkdir()
    for n in ("img0.png", "img1.png"):
        cv2.imwrite(str(folder / n), np.zeros((20, 20), np.uint8))
    (folder / "CollectedData_old.csv").write_text(
        "scorer,old,old,old,old\nbodyparts,snout,snout,tailbase,tailbase\ncoords,x,y,x,y\n"
        "labeled-data\\vid\\img0.png,1.5,2.5,,\nlabeled/img1.png,3,4,5,6\n")
    s = read_labelled(folder)[0]
    assert s.image_names == ("img0.png", "img1.png") and s.bodyparts == ("snout", "tailbase")
    np.testing.assert_allclose(s.xy, [[[1.5, 2.5], [np.nan, np.nan]], [[3, 4], [5, 6]]])


def test_folder_layouts(tmp_path: Path) -> None:
    """A labels file, its folder, labeled-data/ and a project folder all read; a
    DeepLabCut drawing folder without labels is left out; one file twice is refused."""
    data = tmp_path / "proj" / "labeled-data"
    f1, _ = _folder(data, "a")
    _folder(data, "b", seed=1)
    (data / "a_labeled").mkdir()  # DeepLabCut's check_labels drawings
    assert [s.name for s in read_labelled(tmp_path / "proj")] == ["a", "b"]
    assert [s.name for s in read_labelled(data)] == ["a", "b"]
    assert [s.name for s in read_labelled([f1, data / "b" / "CollectedData_me.csv"])] == \
        ["a", "b"]
    with pytest.raises(InputError, match="more than once"):
        read_labelled([f1, data])
    with pytest.raises(InputError, match="no CollectedData_"):
        read_labelled(data / "a_labeled")
    with pytest.raises(InputError, match="does not exist"):
        read_labelled(tmp_path / "nowhere")


@pytest.mark.parametrize(("text", "expected"), [
    ("scorer,,,me,me\nbodyparts,,,nose,nose\ncoords,,,x,y\nlabeled-data,s,img000.png,1,abc\n",
     r"line 4, nose/y: 'abc' is not a number"),
    ("scorer,,,me,me\nbodyparts,,,nose,nose\ncoords,,,x,y\nlabeled-data,s,img000.png,1\n",
     "line 4 has 4 fields, the header 5"),
    ("scorer,,,me,me\nbodyparts,,,nose,nose\ncoords,,,x,y\nlabeled-data,s,gone.png,1,2\n",
     "1 of its 1 images are not beside it"),
    ("scorer,,,me\nbodyparts,,,nose\ncoords,,,x\nlabeled-data,s,img000.png,1\n",
     r"without their x and y columns: nose \(y\)"),
    ("frame,x,y\n0,1,2\n", "header rows start with"),
    ("scorer,,,me,me\nindividuals,,,m1,m1\nbodyparts,,,nose,nose\ncoords,,,x,y\n",
     "multi-animal"),
    ("scorer,,,me,me\nbodyparts,,,nose,nose\ncoords,,,x,y\n"
     "labeled-data,s,img000.png,1,2\nlabeled-data,s,img000.png,3,4\n", "labelled twice"),
])
def test_malformed_csv_is_one_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    cv2.imwrite(str(tmp_path / "img000.png"), np.zeros((20, 20), np.uint8))
    path = tmp_path / "CollectedData_me.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=expected) as err:
        read_labels_file(path)
    assert str(path) in str(err.value)


def test_malformed_h5_and_two_scorers(tmp_path: Path) -> None:
    folder, _ = _folder(tmp_path, "s")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(InputError, match=r"bad.h5.*cannot be read as HDF5"):
        read_labels_file(bad)
    shutil.copy(folder / "CollectedData_me.csv", folder / "CollectedData_you.csv")
    with pytest.raises(InputError, match="2 scorers"):
        read_labelled(folder)


def test_map_checks_and_unused_parts(tmp_path: Path) -> None:
    _folder(tmp_path, "s")
    sets = read_labelled(tmp_path / "s")
    assert label_map(PARTS, ("nose", "tail_base")) == {"nose": "nose",
                                                       "tail_base": "tail_base"}
    with pytest.raises(InputError) as err:
        label_map(PARTS, ("nose",), {"snout": "nose", "HEAD": "head", "nose": "nose",
                                     "tail_base": "nose"})
    msg = str(err.value)  # every problem at once
    assert "'snout'" in msg and "'head'" in msg and "more than one body part" in msg
    with pytest.raises(InputError, match="none of the labelled body parts"):
        label_map(PARTS, ("left_ear",))
    assert unused_parts(sets, ["nose", "tail_base"]) == {"HEAD": 2}
    kept = select_frames(sets, ["s/img001.png", "img002.png"])
    assert kept[0].image_names == ("img001.png", "img002.png")
    with pytest.raises(InputError, match="not labelled"):
        select_frames(sets, ["img999.png"])


@pytest.mark.skipif(not OPENFIELD.exists(), reason=f"real labelled frames absent: {OPENFIELD}")
def test_wrong_detection_is_not_counted_as_found(tmp_path: Path) -> None:
    """Labels moved far from the mouse (into an empty corner): the model's crop misses
    them, so the frame is a wrong detection, its points are failures (PCK 0) and it
    has no pixel error; the same frame with its real labels is found."""
    src = read_labelled(OPENFIELD)[0].subset([0, 1])
    folder = tmp_path / "moved"
    folder.mkdir()
    for p in src.images:
        shutil.copy(p, folder)
    xy = src.xy.copy()
    xy[1] = xy[1] - xy[1].mean(axis=0) + [600.0, 440.0]  # frame 1: far from the mouse
    write_labels(folder, stem="CollectedData_me", scorer="me", images=src.image_names,
                 bodyparts=src.bodyparts, xy=xy)
    model = KeypointModel(threads=1)
    res = evaluate_2d(model, folder, {"snout": "nose", "tailbase": "tail_base"})
    assert (res["overall"]["found"], res["overall"]["wrong_detection"]) == (1, 1)
    snout = res["keypoints"]["snout"]
    assert snout["n"] == 2 and snout["not_found"] == 1 and snout["pck@10px"] == 50.0
    assert snout["max_px"] < 10.0  # only the found frame's error


@pytest.mark.skipif(not XMWELL.exists(), reason=f"xmwell-oft labels absent: {XMWELL}")
def test_eval_2d_tables_per_set_and_overlays(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Two sessions' folders of the DeepLabCut 2.2+ layout: a table per set and overall,
    JSON beside it, an overlay per frame."""
    out = tmp_path / "ov"
    rc = main(["eval-2d", "--labels", str(XMWELL / "1_D1"), str(XMWELL / "2_D3"),
               "--map", "NOSE=nose,TAIL=tail_base", "--save-overlays", str(out),
               "--json", str(tmp_path / "r.json")])
    text = capsys.readouterr().out
    assert rc == 0
    for title in ("set 1_D1: 20 frames", "set 2_D3: 20 frames", "overall: 40 frames"):
        assert title in text, text
    res = json.loads((tmp_path / "r.json").read_text())
    assert set(res["sets"]) == {"1_D1", "2_D3"} and res["overall"]["frames"] == 40
    assert sum(res["overall"][k] for k in ("found", "wrong_detection", "missed")) == 40
    assert len(list((out / "1_D1").glob("*.png"))) == 20
    assert len(list((out / "2_D3").glob("*.png"))) == 20


def test_eval_2d_bad_file_exits_2_naming_it(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "CollectedData_me.csv"
    path.write_text("scorer,,,me,me\nbodyparts,,,nose,nose\ncoords,,,x,y\n"
                    "labeled-data,s,img000.png,1,oops\n")
    assert main(["eval-2d", "--labels", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "'oops' is not a number" in err and "Traceback" not in err


def _left_of_axis(xy: np.ndarray, nose: int, tail: int, paw: int) -> np.ndarray:
    """(N,) sign of the z of (nose - tail base) x (paw - tail base) in image px: which
    side of the body's axis the paw is drawn on, where all three are labelled."""
    a, b = xy[:, nose] - xy[:, tail], xy[:, paw] - xy[:, tail]
    z = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return np.sign(z[np.isfinite(z)])


@pytest.mark.skipif(not MIRROR.is_file(), reason="../shared/data/mirror-mouse-lp is not here")
def test_a_mirror_view_is_written_as_a_camera_below_sees_it(tmp_path: Path) -> None:
    """Lightning Pose keeps CollectedData.csv at the top of its project, its images under
    the paths it gives; the mirror band of those frames, mirrored, puts the mouse's left
    paws on the side of its axis where the engine's bottom views have them."""
    from mouse_lifter_ros.core.synth.dataset import SynthConfig, render_item

    (raw,) = read_labelled(MIRROR)  # images found under labeled-data/, as written
    assert len(raw.images) == 90 and all(p.is_file() for p in raw.images)
    (out,) = write_mirror_view(MIRROR, rows=(170, None), suffix="_bot", out=tmp_path)
    (s,) = read_labelled(out)
    assert s.bodyparts[:7] == ("paw1LH", "paw2LF", "paw3RF", "paw4RH", "tailBase",
                               "tailMid", "nose")
    image = cv2.imread(str(s.images[0]), cv2.IMREAD_UNCHANGED)
    source = cv2.imread(str(raw.images[0]), cv2.IMREAD_UNCHANGED)
    assert image.shape[:2] == (source.shape[0] - 170, source.shape[1])
    assert np.array_equal(image, source[170:, ::-1])
    # the labels moved with the pixels
    i = raw.bodyparts.index("nose_bot")
    assert np.allclose(s.xy[0, 6], [source.shape[1] - 1 - raw.xy[0, i, 0],
                                     raw.xy[0, i, 1] - 170])
    # handedness: the engine's mouse from below, then the lab's, mirrored and not
    config = SynthConfig(count=1, seed=0, view="bottom", sequence_s=0.2, fps=10.0)
    names = list(KEYPOINTS)
    engine = np.stack([f[0].keypoints_2d for f in render_item(config, 0).frames])
    nose, tail = names.index("nose"), names.index("tail_base")
    for ours, theirs in (("left_forepaw", "paw2LF"), ("left_hindpaw", "paw1LH")):
        want = _left_of_axis(engine, nose, tail, names.index(ours))
        assert len(set(want.tolist())) == 1  # the engine's side is the same every frame
        got = _left_of_axis(s.xy, 6, 4, s.bodyparts.index(theirs))
        assert np.mean(got == want[0]) > 0.9, got
        unmirrored = _left_of_axis(raw.xy, raw.bodyparts.index("nose_bot"),
                                   raw.bodyparts.index("tailBase_bot"),
                                   raw.bodyparts.index(f"{theirs}_bot"))
        assert np.mean(unmirrored == want[0]) < 0.1
    with pytest.raises(InputError, match="no body part ends in '_side'"):
        write_mirror_view(MIRROR, rows=(170, None), suffix="_side", out=tmp_path / "x")
    with pytest.raises(InputError, match="suffix '': the mirror view's body parts'"):
        write_mirror_view(MIRROR, rows=(170, None), suffix="", out=tmp_path / "z")
    with pytest.raises(InputError, match="leave 0 of it"):
        write_mirror_view(MIRROR, rows=(500, None), suffix="_bot", out=tmp_path / "y")
