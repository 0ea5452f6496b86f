"""``mouse-lifter compare-2d``: distances between two DeepLabCut pose files of one video."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mouse_lifter_ros.cli import main
from mouse_lifter_ros.core.agreement import agreement
from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.pose_files import DLC_LEVELS


def table(scorer: str, parts: dict[str, np.ndarray], likelihood: dict[str, np.ndarray],
          frames: np.ndarray) -> pd.DataFrame:
    """A DeepLabCut table: (N, 2) px and (N,) likelihood per body part."""
    cols, data = [], []
    for p, xy in parts.items():
        for c, v in (("x", xy[:, 0]), ("y", xy[:, 1]), ("likelihood", likelihood[p])):
            cols.append((scorer, p, c))
            data.append(v)
    return pd.DataFrame(np.column_stack(data), index=frames,
                        columns=pd.MultiIndex.from_tuples(cols, names=list(DLC_LEVELS)))


@pytest.fixture
def pair() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Theirs: ours moved 3 px right on the nose and 4 px down on the tail base, sure
    on all but every fifth frame, where their nose is 100 px off; frames 0-99 and 5-104."""
    rng = np.random.default_rng(0)
    n = 100
    nose, tail = rng.uniform(50, 500, (n, 2)), rng.uniform(50, 500, (n, 2))
    ours = table("mouse-lifter", {"nose": nose, "tail_base": tail},
                 {"nose": np.full(n, 0.9), "tail_base": np.full(n, 0.9)}, np.arange(n))
    their_nose = nose + np.array([3.0, 0.0])
    their_tail = tail + np.array([0.0, 4.0])
    unsure = np.arange(n) % 5 == 0
    their_nose[unsure] += 100.0
    lik = np.where(unsure, 0.2, 0.99)
    theirs = table("DLC_resnet50", {"Nose": their_nose, "Tailroot": their_tail},
                   {"Nose": lik, "Tailroot": np.full(n, 0.99)}, np.arange(n))
    theirs.index = theirs.index + 5
    ours.loc[ours.index == 51, ("mouse-lifter", "nose", "x")] = np.nan  # we missed one
    return ours, theirs


def test_agreement_counts_only_their_sure_frames_in_common(
        pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ours, theirs = pair
    got = agreement(ours, theirs, {"Nose": "nose", "Tailroot": "tail_base"})
    assert got["frames"] == 95  # ours 0-99, theirs 5-104
    nose, tail = got["parts"]["Nose"], got["parts"]["Tailroot"]
    assert nose["compared"] == 95 - 19  # their nose unsure at frames 5, 10, ..., 95
    assert nose["found"] == nose["compared"] - 1  # our miss at frame 51
    assert tail["compared"] == tail["found"] == 95


def test_agreement_by_frame_number(pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ours, theirs = pair
    aligned = theirs.copy()
    aligned.index = aligned.index - 5  # the same frames as ours
    got = agreement(ours, aligned, {"Nose": "nose", "Tailroot": "tail_base"})
    nose, tail = got["parts"]["Nose"], got["parts"]["Tailroot"]
    assert got["frames"] == 100
    assert nose["compared"] == 80 and nose["found"] == 79  # frame 51 is sure and missed
    assert nose["median_px"] == pytest.approx(3.0) and nose["p90_px"] == pytest.approx(3.0)
    assert tail["compared"] == tail["found"] == 100
    assert tail["mean_px"] == pytest.approx(4.0)
    # a lower bar takes the unsure frames, 100 px off, into the figures
    loose = agreement(ours, aligned, {"Nose": "nose"}, min_likelihood=0.1)
    assert loose["parts"]["Nose"]["compared"] == 100
    assert loose["parts"]["Nose"]["p90_px"] > 90


def test_agreement_errors_list_every_problem(pair: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ours, theirs = pair
    with pytest.raises(InputError) as err:
        agreement(ours, theirs, {"Snout": "nose", "Tailroot": "tail"}, min_likelihood=1.5)
    text = str(err.value)
    for needle in ("min_likelihood 1.5", "theirs: no body part 'Snout'",
                   "ours: no body part 'tail'"):
        assert needle in text, text
    far = theirs.copy()
    far.index = far.index + 1000
    with pytest.raises(InputError, match="no frame number in common"):
        agreement(ours, far, {"Nose": "nose"})


def test_compare_2d_command(tmp_path: Path, pair: tuple[pd.DataFrame, pd.DataFrame],
                            capsys: pytest.CaptureFixture[str]) -> None:
    ours, theirs = pair
    aligned = theirs.copy()
    aligned.index = aligned.index - 5
    ours.to_hdf(tmp_path / "ours.h5", key="df_with_missing", format="table")
    aligned.to_csv(tmp_path / "theirs.csv")
    assert main(["compare-2d", str(tmp_path / "ours.h5"), str(tmp_path / "theirs.csv"),
                 "--map", "Nose=nose,Tailroot=tail_base", "--json", "-"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["parts"]["Nose"]["median_px"] == pytest.approx(3.0)
    assert got["parts"]["Tailroot"]["ours"] == "tail_base"
    assert main(["compare-2d", str(tmp_path / "ours.h5"), str(tmp_path / "theirs.csv"),
                 "--map", "Nose=nose"]) == 0
    out = capsys.readouterr().out
    assert "Nose" in out and "3.00" in out
    # a wrong name: one clear error, exit code 2
    assert main(["compare-2d", str(tmp_path / "ours.h5"), str(tmp_path / "theirs.csv"),
                 "--map", "Snout=nose"]) == 2
    assert "no body part 'Snout'" in capsys.readouterr().err
