"""Labelled frames in DeepLabCut's layout: the one reader (and writer) of the project.

What labs have today, all read by :func:`read_labelled`:

- a labels file, ``CollectedData_<scorer>.csv`` or ``.h5``, with its images beside it.
  DeepLabCut 2.2 and later write three index columns (``labeled-data``, the video's
  folder, the image name); older versions one column holding the image's path
  (``labeled-data/<video>/img0001.png``). Columns are ``scorer``, ``bodyparts`` and
  ``coords`` (``x``, ``y``; predictions add ``likelihood``, which is not read);
- a folder holding such a file (``labeled-data/<video>/``);
- a ``labeled-data/`` folder, or a DeepLabCut project folder (holding ``labeled-data/``):
  every sub-folder with a ``CollectedData_*`` file is one labelled set, and the other
  sub-folders (DeepLabCut's ``<video>_labeled`` drawings, folders not labelled yet) are
  left out.

Images are looked for beside the labels file; an older file's paths are also followed
from its folder (a project whose ``CollectedData.csv`` sits at its top, as Lightning
Pose keeps it). When a folder holds both the ``.h5`` and the ``.csv`` of one labels file
the ``.h5`` is read: it is the file DeepLabCut itself reads, and the one its GUI saves.

Every problem of a file is listed in one :class:`~.errors.InputError` that names the file.
Multi-animal files (an ``individuals`` header row) are refused: the project tracks one
mouse per frame.

:func:`write_labels` writes the same layout (``.h5`` + ``.csv``, three index columns), as
``mouse-lifter extract-frames`` does for its starting predictions, and
:func:`write_mirror_view` the mirror view of a labelled rig as a camera would see it.

Coordinates are pixels of the image with the origin at the centre of the top-left pixel
(DeepLabCut's convention, and the project's).
"""

from __future__ import annotations

import csv
import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.pose_files import DLC_H5_KEY, DLC_LEVELS

#: The name DeepLabCut gives its labels files (``CollectedData_<scorer>``).
LABELS_PREFIX: Final = "CollectedData_"
#: The folder of labelled frames in a DeepLabCut project.
LABELLED_DATA: Final = "labeled-data"
#: Image suffixes DeepLabCut's labelling tools read.
IMAGE_SUFFIXES: Final = (".png", ".jpg", ".jpeg")
#: How many names an error lists before it says "and N more".
_SHOWN: Final = 5


@dataclass(frozen=True)
class LabelledSet:
    """One labels file and its images.

    ``name``: the folder of the labels file (DeepLabCut's video folder), ``path``: the
    file, ``scorer``: its scorer, ``images`` (N,): the image files, ``bodyparts`` (P,),
    ``xy`` (N, P, 2): label positions in px, NaN where a body part is not labelled.
    """

    name: str
    path: Path
    scorer: str
    images: tuple[Path, ...]
    bodyparts: tuple[str, ...]
    xy: NDArray[np.float64]

    @property
    def image_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.images)

    def labelled(self) -> NDArray[np.bool_]:
        """(N, P): the body part is labelled in the frame."""
        return np.asarray(np.isfinite(self.xy).all(axis=2))

    def subset(self, keep: Sequence[int]) -> LabelledSet:
        """The same set with only the frames ``keep`` (indices, in that order)."""
        idx = np.asarray(keep, np.intp)
        return LabelledSet(self.name, self.path, self.scorer,
                           tuple(self.images[i] for i in idx.tolist()), self.bodyparts,
                           self.xy[idx])


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


# ------------------------------------------------------------------------------ finding


def labels_file(folder: Path) -> Path | None:
    """The labels file of a labelled folder (``.h5`` before ``.csv``), None when it has
    none. Raises :class:`InputError` when it holds files of more than one scorer."""
    found = sorted(p for p in folder.glob(f"{LABELS_PREFIX}*")
                   if p.suffix in (".h5", ".csv") and p.is_file())
    stems = sorted({p.stem for p in found})
    if len(stems) > 1:
        raise InputError(f"labelled folder '{folder}': labels files of {len(stems)} scorers "
                         f"({', '.join(stems)}); give the one to read")
    if not found:
        return None
    by_suffix = {p.suffix: p for p in found}
    return by_suffix.get(".h5") or by_suffix[".csv"]


def find_labels(path: str | Path) -> list[Path]:
    """The labels files a path stands for: the file itself, the labels file of a
    labelled folder, or those of every labelled sub-folder of ``labeled-data/`` (or of a
    project's ``labeled-data/``), sorted by folder name."""
    p = Path(path)
    if p.is_file():
        if p.suffix not in (".csv", ".h5"):
            raise InputError(f"labels '{p}': a DeepLabCut .csv or .h5 labels file, or a "
                             "folder holding them, is needed")
        return [p]
    if not p.is_dir():
        raise InputError(f"labels '{p}' does not exist")
    own = labels_file(p)
    if own is not None:
        return [own]
    root = p / LABELLED_DATA if (p / LABELLED_DATA).is_dir() else p
    found = [f for sub in sorted(root.iterdir()) if sub.is_dir()
             for f in [labels_file(sub)] if f is not None]
    if not found:
        raise InputError(f"labels '{p}': no {LABELS_PREFIX}<scorer>.h5/.csv in it or in its "
                         f"sub-folders (a DeepLabCut {LABELLED_DATA}/ folder, one of its "
                         "video folders, a project folder or a labels file is needed)")
    return found


# ------------------------------------------------------------------------------ reading


def read_labelled(paths: str | Path | Sequence[str | Path]) -> list[LabelledSet]:
    """Every labelled set under ``paths`` (files or folders, see the module notes), in
    the order given. Raises :class:`InputError` for a path without labels, a file that
    cannot be read, or one file reached twice."""
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise InputError("labels: no file or folder given")
    files = [f for item in items for f in find_labels(item)]
    seen: dict[Path, int] = {}
    for f in files:
        seen[f.resolve()] = seen.get(f.resolve(), 0) + 1
    twice = [str(f) for f, n in seen.items() if n > 1]
    if twice:
        raise InputError(f"labels: {_listed(twice)} given more than once")
    return [read_labels_file(f) for f in files]


def read_labels_file(path: str | Path) -> LabelledSet:
    """One DeepLabCut labels file (``.csv`` or ``.h5``) with its images beside it."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"labels file '{p}' does not exist")
    problems: list[str] = []
    if p.suffix == ".h5":
        scorer, index, columns, values = _read_h5(p, problems)
    elif p.suffix == ".csv":
        scorer, index, columns, values = _read_csv(p, problems)
    else:
        raise InputError(f"labels file '{p}': .csv or .h5 needed")
    if not problems:
        return _assemble(p, scorer, index, columns, values, problems)
    raise InputError(f"labels file '{p}': " + "; ".join(problems))


def _assemble(p: Path, scorer: str, index: list[str], columns: list[tuple[str, str]],
              values: NDArray[np.float64], problems: list[str]) -> LabelledSet:
    """Labels from rows named ``index`` (image names) and ``columns`` (part, coord)."""
    parts = list(dict.fromkeys(part for part, _ in columns))
    col = {c: i for i, c in enumerate(columns)}
    lacking = [f"{part} ({'/'.join(c for c in ('x', 'y') if (part, c) not in col)})"
               for part in parts if (part, "x") not in col or (part, "y") not in col]
    if lacking:
        problems.append(f"body parts without their x and y columns: {_listed(lacking)}")
    if not index:
        problems.append("no labelled frames in it")
    names = [n.rsplit("/", 1)[-1] for n in index]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        problems.append(f"images labelled twice: {_listed(dup)}")
    images = [_located(p.parent, n) for n in index]
    lost = [n for n, i in zip(index, images, strict=True) if not i.is_file()]
    if lost:
        paths = " (nor where its paths lead from there)" if any("/" in n for n in lost) \
            else ""
        problems.append(f"{len(lost)} of its {len(images)} images are not beside it in "
                        f"'{p.parent}'{paths}: {_listed([n.rsplit('/', 1)[-1] for n in lost])}")
    if problems:
        raise InputError(f"labels file '{p}': " + "; ".join(problems))
    xy = np.stack([values[:, [col[(part, "x")], col[(part, "y")]]] for part in parts], axis=1)
    return LabelledSet(p.parent.name, p, scorer, tuple(images), tuple(parts), xy)


def _image_name(key: Any) -> str:
    """The image from a row's index: the last of DeepLabCut 2.2's three index columns
    (a name), or an older single path (either slash; ``/`` returned)."""
    last = key[-1] if isinstance(key, tuple) else key
    return str(last).replace("\\", "/")


def _located(folder: Path, key: str) -> Path:
    """The image ``key`` (:func:`_image_name`) of a labels file in ``folder``: beside the
    file, else at the path it gives from there (a labels file at the top of a project,
    as Lightning Pose keeps its ``CollectedData.csv``); beside it when neither is there."""
    beside = folder / key.rsplit("/", 1)[-1]
    if not beside.is_file() and "/" in key and (folder / key).is_file():
        return folder / key
    return beside


def _read_csv(p: Path, problems: list[str]
              ) -> tuple[str, list[str], list[tuple[str, str]], NDArray[np.float64]]:
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        problems.append(f"cannot be read as CSV ({exc})")
        return "", [], [], np.zeros((0, 0))
    heads = [r[0].strip() if r else "" for r in rows[:4]]
    if len(heads) > 1 and heads[1] == "individuals":
        problems.append("a multi-animal file (an 'individuals' header row): one mouse per "
                        "frame is read; export the one animal's labels")
        return "", [], [], np.zeros((0, 0))
    if heads[:3] != list(DLC_LEVELS):
        problems.append(f"header rows start with {heads[:3]}, expected {list(DLC_LEVELS)} "
                        "(a DeepLabCut labels CSV)")
        return "", [], [], np.zeros((0, 0))
    first = rows[0]
    n_index = 1
    while n_index < len(first) and first[n_index].strip() == "":
        n_index += 1  # DeepLabCut 2.2+: three index columns, empty in the header rows
    width = len(first)
    scorer = first[n_index].strip() if n_index < width else ""
    columns = [(rows[1][j].strip(), rows[2][j].strip().lower())
               for j in range(n_index, width) if j < len(rows[1]) and j < len(rows[2])]
    if len(columns) != width - n_index:
        problems.append("header rows of different lengths")
    keep = [j for j, (_, c) in enumerate(columns) if c in ("x", "y")]
    index: list[str] = []
    values = np.full((max(0, len(rows) - 3), len(keep)), np.nan)
    bad: list[str] = []
    for r, row in enumerate(rows[3:]):
        line = r + 4
        if not any(f.strip() for f in row):
            continue
        if len(row) != width:
            bad.append(f"line {line} has {len(row)} fields, the header {width}")
            continue
        index.append(_image_name(tuple(row[:n_index])))
        for k, j in enumerate(keep):
            text = row[n_index + j].strip()
            if text == "":
                continue
            try:
                v = float(text)
            except ValueError:
                bad.append(f"line {line}, {'/'.join(columns[j])}: {text!r} is not a number")
                continue
            if not math.isfinite(v):
                bad.append(f"line {line}, {'/'.join(columns[j])}: {text!r} is not finite "
                           "(leave the field empty for a part that is not labelled)")
            values[len(index) - 1, k] = v
    if bad:
        problems.append(_listed(bad))
    return scorer, index, [columns[j] for j in keep], values[:len(index)]


def _read_h5(p: Path, problems: list[str]
             ) -> tuple[str, list[str], list[tuple[str, str]], NDArray[np.float64]]:
    try:
        pandas = importlib.import_module("pandas")
        importlib.import_module("tables")
    except ImportError as exc:
        problems.append(f"reading .h5 needs pandas and PyTables ({exc}); give the .csv")
        return "", [], [], np.zeros((0, 0))
    try:
        with pandas.HDFStore(p, mode="r") as store:
            keys = store.keys()
            key = keys[0] if len(keys) == 1 else next(
                (k for k in ("/keypoints", f"/{DLC_H5_KEY}") if k in keys), None)
            if key is None:
                problems.append(f"holds the tables {keys}; a DeepLabCut labels file holds "
                                f"one ('keypoints' or '{DLC_H5_KEY}')")
                return "", [], [], np.zeros((0, 0))
            df = store[key]
    except Exception as exc:  # PyTables and pandas raise many types for a bad file
        problems.append(f"cannot be read as HDF5 ({type(exc).__name__}: {exc})")
        return "", [], [], np.zeros((0, 0))
    cols = getattr(df, "columns", None)
    if cols is None or getattr(cols, "nlevels", 0) != 3:
        names = list(getattr(cols, "names", []) or [])
        what = ("a multi-animal file (an 'individuals' column level): one mouse per frame "
                "is read" if "individuals" in names else
                f"column levels {names}, expected {list(DLC_LEVELS)}")
        problems.append(what)
        return "", [], [], np.zeros((0, 0))
    columns = [(str(part), str(coord).lower()) for _, part, coord in cols]
    keep = [j for j, (_, c) in enumerate(columns) if c in ("x", "y")]
    try:
        values = df.iloc[:, keep].to_numpy(np.float64)
    except (TypeError, ValueError) as exc:
        problems.append(f"values that are not numbers ({exc})")
        return "", [], [], np.zeros((0, 0))
    scorer = str(cols[0][0]) if len(cols) else ""
    index = [_image_name(k) for k in df.index]
    return scorer, index, [columns[j] for j in keep], values


def read_image(path: Path) -> NDArray[np.uint8]:
    """A labelled image as uint8 grey (H, W) or BGR (H, W, 3): alpha is dropped and a
    16-bit image is scaled to 0..255. :class:`InputError` when it cannot be read."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"labelled image '{path}' is missing or not an image OpenCV reads")
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.dtype != np.uint8:
        img = cv2.convertScaleAbs(img, alpha=255.0 / max(1.0, float(img.max())))
    return np.asarray(img, np.uint8)


def select_frames(sets: Sequence[LabelledSet], frames: Sequence[str] | None
                  ) -> list[LabelledSet]:
    """``sets`` kept to ``frames``: image names (``img0001.png``, in any set) or
    ``set/name``; sets left without a frame are dropped. :class:`InputError` names the
    frames that are not labelled anywhere."""
    if frames is None:
        return list(sets)
    wanted = set(frames)
    known = {n for s in sets for n in s.image_names} | {
        f"{s.name}/{n}" for s in sets for n in s.image_names}
    unknown = sorted(wanted - known)
    if unknown:
        raise InputError(f"frames {unknown[:5]}{' ...' if len(unknown) > 5 else ''} are not "
                         f"labelled in {', '.join(str(s.path) for s in sets)}")
    out = []
    for s in sets:
        keep = [i for i, n in enumerate(s.image_names)
                if n in wanted or f"{s.name}/{n}" in wanted]
        if keep:
            out.append(s.subset(keep))
    return out


# ------------------------------------------------------------------------------ mapping


def label_map(bodyparts: Sequence[str], targets: Sequence[str],
              mapping: Mapping[str, str] | None = None, *, what: str = "labels"
              ) -> dict[str, str]:
    """Which labelled body part supervises or scores which keypoint: ``mapping``
    (their name -> one of ``targets``), checked against ``bodyparts``; without one, the
    body parts whose name is one of ``targets``. Every problem in one
    :class:`InputError`, which also says when no body part is mapped."""
    parts = list(dict.fromkeys(bodyparts))
    if mapping is None:
        out = {p: p for p in parts if p in targets}
    else:
        out = dict(mapping)
        problems = []
        unknown = [p for p in out if p not in parts]
        if unknown:
            problems.append(f"--map names {unknown}, not among the labelled body parts "
                            f"{parts}")
        bad = sorted({t for t in out.values() if t not in targets})
        if bad:
            problems.append(f"--map targets {bad} are not keypoints of the model "
                            f"({', '.join(targets)})")
        twice = sorted({t for t in out.values() if list(out.values()).count(t) > 1})
        if twice:
            problems.append(f"--map gives {twice} more than one body part")
        if problems:
            raise InputError(f"{what}: " + "; ".join(problems))
    if not out:
        raise InputError(f"{what}: none of the labelled body parts {parts} is a keypoint of "
                         f"the model ({', '.join(targets)}); map them with --map "
                         "their=ours,...")
    return out


def mapped_xy(labelled: LabelledSet, mapping: Mapping[str, str], targets: Sequence[str]
              ) -> NDArray[np.float64]:
    """(N, T, 2) px: the labels of ``labelled`` as the ``targets`` keypoints (NaN for a
    target no mapped body part gives, or not labelled in the frame)."""
    out = np.full((len(labelled.images), len(targets), 2), np.nan)
    for part, target in mapping.items():
        if part in labelled.bodyparts:
            out[:, list(targets).index(target)] = labelled.xy[:, labelled.bodyparts.index(part)]
    return out


def unused_parts(sets: Sequence[LabelledSet], used: Sequence[str]) -> dict[str, int]:
    """Body parts of ``sets`` not in ``used``, each with the number of frames it is
    labelled in, in the order they first appear."""
    out: dict[str, int] = {}
    for s in sets:
        lab = s.labelled()
        for j, part in enumerate(s.bodyparts):
            if part not in used:
                out[part] = out.get(part, 0) + int(lab[:, j].sum())
    return out


def all_bodyparts(sets: Sequence[LabelledSet]) -> list[str]:
    """The body parts of every set, in the order they first appear."""
    return list(dict.fromkeys(p for s in sets for p in s.bodyparts))


# ------------------------------------------------------------------------------ writing


def write_labels(folder: str | Path, *, stem: str, scorer: str, images: Sequence[str],
                 bodyparts: Sequence[str], xy: NDArray[Any],
                 likelihood: NDArray[Any] | None = None) -> tuple[Path, Path]:
    """Write ``<folder>/<stem>.h5`` and ``.csv`` in DeepLabCut 2.2's layout (index
    ``labeled-data``, the folder's name, the image name): ``images`` (N,) names of
    images in ``folder``, ``xy`` (N, P, 2) px (NaN: not labelled), ``likelihood`` (N, P)
    0..1 adds a likelihood column per part (DeepLabCut's predictions, ``machinelabels``).
    Returns the two paths."""
    pandas = importlib.import_module("pandas")
    out = Path(folder)
    pts = np.asarray(xy, np.float64)
    n, k = len(images), len(bodyparts)
    if pts.shape != (n, k, 2):
        raise InputError(f"write labels '{out / stem}': xy {pts.shape}, ({n}, {k}, 2) needed")
    coords = ("x", "y") if likelihood is None else ("x", "y", "likelihood")
    blocks = [pts[:, :, 0], pts[:, :, 1]]
    if likelihood is not None:
        lk = np.asarray(likelihood, np.float64)
        if lk.shape != (n, k):
            raise InputError(f"write labels '{out / stem}': likelihood {lk.shape}, ({n}, "
                             f"{k}) needed")
        blocks.append(lk)
    data = np.stack(blocks, axis=2).reshape(n, k * len(coords))
    columns = pandas.MultiIndex.from_tuples(
        [(scorer, part, c) for part in bodyparts for c in coords], names=list(DLC_LEVELS))
    index = pandas.MultiIndex.from_tuples([(LABELLED_DATA, out.name, i) for i in images])
    df = pandas.DataFrame(data, index=index, columns=columns)
    h5, csv_path = out / f"{stem}.h5", out / f"{stem}.csv"
    df.to_hdf(h5, key=DLC_H5_KEY, mode="w")
    df.to_csv(csv_path)
    return h5, csv_path


def write_mirror_view(labels: str | Path, *, rows: tuple[int, int | None], suffix: str,
                      out: str | Path, scorer: str = "mirror") -> list[Path]:
    """The mirror view of a labelled rig, as a camera there would see it, written as a
    labelled project.

    Rigs that film the mouse's underside in a 45-degree mirror (gait and wheel rigs, as
    ``../shared/data/mirror-mouse-lp``) show it in one band of image ``rows`` (start,
    end; end None: to the bottom), labelled with body parts of their own ``suffix``
    (``nose_bot``, ...). A mirror turns an image's handedness: what a camera under the
    floor would see is the band mirrored left to right. For each set of ``labels``
    (anything :func:`read_labelled` reads) this writes the band of every frame,
    mirrored, into ``out/labeled-data/<set>/`` with the labels of the parts ending in
    ``suffix`` (suffix dropped, x mirrored, y from the band's top; NaN where outside the
    band) as ``CollectedData_<scorer>`` (:func:`write_labels`). Returns the labels files
    (``.csv``). :class:`InputError` for an empty ``suffix``, a set with no part of it or a
    band under 8 rows.
    """
    import cv2

    if not suffix:
        raise InputError("mirror view: suffix '': the mirror view's body parts' own "
                         "suffix, e.g. _bot")
    start, end = rows
    written = []
    for s in read_labelled(labels):
        keep = [i for i, p in enumerate(s.bodyparts) if p.endswith(suffix)]
        if not keep:
            raise InputError(f"{s.path}: no body part ends in {suffix!r} (its parts: "
                             f"{_listed(s.bodyparts)})")
        folder = Path(out) / LABELLED_DATA / s.name
        folder.mkdir(parents=True, exist_ok=True)
        xy = s.xy[:, keep].copy()
        for n, path in enumerate(s.images):
            band = read_image(path)[start:end]
            if band.shape[0] < 8:
                raise InputError(f"{path}: rows {start}:{end} leave {band.shape[0]} of it")
            cv2.imwrite(str(folder / path.name), np.ascontiguousarray(band[:, ::-1]))
            xy[n, :, 0] = band.shape[1] - 1 - xy[n, :, 0]
            xy[n, :, 1] -= start
            xy[n, (xy[n, :, 1] < 0) | (xy[n, :, 1] > band.shape[0] - 1)] = np.nan
        written.append(write_labels(
            folder, stem=f"{LABELS_PREFIX}{scorer}", scorer=scorer, images=s.image_names,
            bodyparts=[s.bodyparts[i][:-len(suffix)] for i in keep], xy=xy)[1])
    return written
