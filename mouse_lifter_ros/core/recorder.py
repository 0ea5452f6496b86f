"""The recorder: 2D keypoints, 3D poses and behaviour paired by stamp, written to files.

``recorder_node`` hands each message's content to a :class:`Recorder`; it pairs the
three streams by their stamp (:class:`StampMatcher`) and writes one
:class:`~.pose_files.FrameRecord` per complete frame through :class:`~.pose_files.DlcWriter`
(``<prefix>.h5``, ``<prefix>.csv``) and :class:`~.pose_files.AnnotationsWriter`
(``<prefix>_annotations.csv`` or ``.parquet``).

Pairing: all three messages of a frame carry the capture stamp of its source image
(``Keypoints2D.header.stamp``, ``Pose3D.source_stamp``, ``Behavior.header.stamp``). A
frame is written as soon as it has all three. A frame still incomplete when a newer
frame completes (the streams are reliable and in order, so its missing part is not
coming: a node upstream skipped it), or when more than ``max_pending`` frames wait,
is dropped and counted; so are the frames still incomplete at :meth:`Recorder.close`.
Frames are numbered 0, 1, 2, ... in the order written; ``Time since start`` is the
stamp minus the first written frame's stamp.

Files, memory and failures: the CSVs are appended row by row; the ``.h5`` rows are held
in memory and appended every ``flush_period`` seconds (:meth:`Recorder.add`, or
:meth:`Recorder.poll` from a timer when no frame comes), so memory does not grow with the
session and a hard kill loses at most ``flush_period`` of rows from any file. With
``fmt="parquet"`` the annotations are appended to ``<prefix>_annotations.csv`` and
converted to ``<prefix>_annotations.parquet`` at :meth:`Recorder.close` (the CSV is then
removed; after a hard kill it holds the table). :func:`check_output_dir` refuses, at
start-up, a folder that cannot be written or has less than ``min_free_mb`` free. A write
that fails later (a full disk, an I/O error) loses only the rows concerned, from that
file: it is counted per file (:attr:`Recorder.failures`, the summary line) and the
recorder, and the other files, go on.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.pose_files import (
    AnnotationsFormat,
    AnnotationsWriter,
    DlcWriter,
    FileFailures,
    FrameRecord,
    RecordingWriteError,
    annotations_csv_to_parquet,
    import_or_explain,
)

#: The streams a frame needs, in the order of :meth:`StampMatcher.add`'s ``stream``.
STREAMS: Final = ("keypoints", "pose", "behavior")
#: Messages our nodes' keypoint, pose, behaviour and trigger publishers keep for a reader
#: that discovery matches late (transient local): 10 s at 30 fps.
PUBLISHER_HISTORY: Final = 300
#: Frames waiting for their other parts at most (the oldest are dropped beyond this): what
#: a late-matched publisher still holds, and some more.
MAX_PENDING: Final = PUBLISHER_HISTORY + 20
#: Seconds between appends of the rows held in memory to the ``.h5`` (the most of a
#: recording a hard kill can lose).
FLUSH_PERIOD_S: Final = 1.0
#: Free space the output folder needs at start-up, MB (10**6 bytes): about three hours of
#: a 30 fps session with the annotations as CSV (``benchmarks/recorder_soak.py``).
MIN_FREE_MB: Final = 1000.0


class StampMatcher:
    """Group messages of several streams by stamp; bounded, drops counted per stream.

    ``add(stamp, stream, item)`` returns the completed frames (stamp order) as
    ``(stamp_ns, {stream: item})``. Dropped incomplete frames are counted in
    ``dropped`` and, per stream that had arrived, in ``unmatched``.
    """

    def __init__(self, streams: Sequence[str] = STREAMS, max_pending: int = MAX_PENDING) -> None:
        if max_pending < 1:
            raise InputError(f"max_pending = {max_pending}: must be >= 1")
        self.streams = tuple(streams)
        self.max_pending = max_pending
        self._pending: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self.dropped = 0
        self.unmatched = dict.fromkeys(self.streams, 0)
        self.duplicates = 0

    def add(self, stamp_ns: int, stream: str, item: Any) -> list[tuple[int, dict[str, Any]]]:
        """Add one message; return the frames it completes (at most one)."""
        if stream not in self.unmatched:
            raise InputError(f"unknown stream {stream!r} (known: {', '.join(self.streams)})")
        parts = self._pending.setdefault(stamp_ns, {})
        if stream in parts:
            self.duplicates += 1
        parts[stream] = item
        if len(parts) < len(self.streams):
            while len(self._pending) > self.max_pending:
                self._drop(next(iter(self._pending)))
            return []
        for older in [s for s in self._pending if s < stamp_ns]:
            self._drop(older)
        del self._pending[stamp_ns]
        return [(stamp_ns, parts)]

    def flush(self) -> None:
        """Drop (and count) every frame still incomplete."""
        for stamp in list(self._pending):
            self._drop(stamp)

    @property
    def pending(self) -> int:
        """Frames waiting for their other parts."""
        return len(self._pending)

    def _drop(self, stamp: int) -> None:
        parts = self._pending.pop(stamp)
        self.dropped += 1
        for stream in parts:
            self.unmatched[stream] += 1


@dataclass(frozen=True)
class Keypoints:
    """A ``Keypoints2D``'s content: names, (K, 2) pixels, (K,) confidence."""

    names: tuple[str, ...]
    xy: NDArray[np.float64]
    confidence: NDArray[np.float64]


@dataclass(frozen=True)
class Pose:
    """A ``Pose3D``'s content: names and (K, 3) arena-frame positions, metres."""

    names: tuple[str, ...]
    positions: NDArray[np.float64]


@dataclass(frozen=True)
class Behavior:
    """A ``Behavior``'s content: the label and its probability (NaN if not listed)."""

    label: str
    probability: float


def behavior_of(label: str, class_names: Sequence[str], probabilities: Sequence[float]) -> Behavior:
    """The label and its probability from a ``Behavior`` message's fields."""
    names = list(class_names)
    p = float(probabilities[names.index(label)]) if label in names else math.nan
    return Behavior(label, min(max(p, 0.0), 1.0) if math.isfinite(p) else math.nan)


def _finite(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """``a`` with infinities replaced by NaN (the files' "missing")."""
    arr = np.asarray(a, dtype=np.float64)
    return np.asarray(np.where(np.isinf(arr), np.nan, arr))


def check_output_dir(output_dir: str | Path, min_free_mb: float) -> Path:
    """Create ``output_dir`` if missing and check that files can be written there and
    that at least ``min_free_mb`` MB (10**6 bytes) are free; return its path.

    Raises
    ------
    InputError
        Naming the parameter, its value, what is wrong and what is needed.
    """
    out = Path(output_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        where = f" ('{exc.filename}')" if exc.filename else ""
        raise InputError(
            f"output_dir = '{output_dir}': cannot write there: {exc.strerror or exc}{where}; "
            "it must be a folder this process can create and write files in") from exc
    free_mb = shutil.disk_usage(out).free / 1e6
    if free_mb < min_free_mb:
        raise InputError(
            f"output_dir = '{output_dir}': {free_mb:.0f} MB free, less than min_free_mb = "
            f"{min_free_mb:g} MB; free some space, choose another output_dir or lower "
            "min_free_mb (a 30 fps session writes about 0.3 GB per hour)")
    return out


def recording_paths(output_dir: str | Path, prefix: str, fmt: str) -> tuple[Path, Path]:
    """The DeepLabCut stem (``.h5``/``.csv`` appended) and the annotations table's path."""
    out = Path(output_dir).expanduser()
    return out / prefix, out / f"{prefix}_annotations.{fmt}"


def describe_recording(output_dir: str | Path, prefix: str, fmt: str = "csv") -> list[str]:
    """One line per file of a recording: path, size and rows read back (the ``.h5`` with
    ``pandas.read_hdf(path, "df_with_missing")``), and the annotations' behaviour labels;
    the messages per topic of the rosbag2 ``<prefix>_bag`` when there is one. A file that
    is missing or unreadable says so in its line."""
    from mouse_lifter_ros.core.pose_files import BEHAVIOR_COLUMN, read_annotations, read_dlc_csv

    pandas = import_or_explain("pandas", "reading a recording")
    stem, annotations = recording_paths(output_dir, prefix, fmt)
    readers: tuple[tuple[Path, Any], ...] = (
        (Path(f"{stem}.h5"), lambda p: pandas.read_hdf(p, "df_with_missing")),
        (Path(f"{stem}.csv"), read_dlc_csv), (annotations, read_annotations))
    lines = []
    for path, read in readers:
        if not path.is_file():
            lines.append(f"{path}: missing")
            continue
        try:
            table = read(path)
        except Exception as exc:  # any reader error is reported in the line, not raised
            lines.append(f"{path}: {path.stat().st_size / 1024:.1f} kB, unreadable ({exc})")
            continue
        line = f"{path}: {path.stat().st_size / 1024:.1f} kB, {len(table)} rows"
        if path == annotations and BEHAVIOR_COLUMN in table.columns:
            counts = table[BEHAVIOR_COLUMN].value_counts()
            line += " (" + ", ".join(f"{k or '-'} {v}" for k, v in counts.items()) + ")"
        lines.append(line)
    bag = Path(f"{stem}_bag")
    if bag.is_dir():  # the recorder's optional rosbag2 of the topics
        from mouse_lifter_ros.core.bag import bag_topics

        try:
            topics = ", ".join(f"{t.name} {t.count}" for t in bag_topics(bag))
            lines.append(f"{bag}: rosbag2, messages: {topics}")
        except Exception as exc:  # reported in the line, not raised
            lines.append(f"{bag}: unreadable rosbag2 ({exc})")
    return lines


class Recorder:
    """Pair the streams and write complete frames (module docstring).

    Parameters
    ----------
    output_dir, prefix:
        The files: ``<output_dir>/<prefix>.h5``, ``.csv`` and ``_annotations.<fmt>``.
        The folder is checked at once (:func:`check_output_dir`).
    fmt:
        ``"csv"`` or ``"parquet"``: the annotations table's format.
    flush_period:
        Seconds (of ``clock``) between appends of the rows held to the ``.h5``, > 0.
    min_free_mb:
        Free space ``output_dir`` needs now, MB (10**6 bytes), >= 0.
    overwrite:
        Replace existing files; otherwise they are an :class:`InputError` here already.
    max_pending:
        Incomplete frames held by the :class:`StampMatcher`.
    clock:
        Seconds, monotonic: ``time.monotonic``, or a simulated one.

    The writers are opened at the first complete frame (the body parts come from its
    keypoints). A complete frame whose stamp is not after the last written one, or whose
    keypoint names differ from the files' columns, is not written (``rejected``). Write
    failures never raise: they are counted per file (:attr:`failures`).
    """

    def __init__(self, output_dir: str | Path, prefix: str, *, fmt: AnnotationsFormat = "csv",
                 flush_period: float = FLUSH_PERIOD_S, min_free_mb: float = MIN_FREE_MB,
                 overwrite: bool = False, max_pending: int = MAX_PENDING,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not (math.isfinite(flush_period) and flush_period > 0):
            raise InputError(f"flush_period = {flush_period!r}: must be > 0 seconds")
        check_output_dir(output_dir, min_free_mb)
        self.stem, self.annotations_path = recording_paths(output_dir, prefix, fmt)
        # With Parquet, the table is appended as CSV and converted at the close.
        self._table_path = self.annotations_path.with_suffix(".csv")
        self.files = tuple(dict.fromkeys((
            Path(f"{self.stem}.h5"), Path(f"{self.stem}.csv"), self.annotations_path,
            self._table_path)))
        existing = [str(p) for p in self.files if p.exists()]
        if existing and not overwrite:
            raise InputError(f"recording files exist: {', '.join(existing)} (set overwrite "
                             "to replace them, or choose another prefix or output_dir)")
        if fmt == "parquet" and overwrite:
            self.annotations_path.unlink(missing_ok=True)  # not left beside the new one
        self.fmt, self.flush_period, self._clock = fmt, float(flush_period), clock
        self.matcher = StampMatcher(max_pending=max_pending)
        self.frames = 0
        self.rejected = 0
        self.last_stamp_ns: int | None = None
        self._start_ns: int | None = None
        self._names: tuple[str, ...] | None = None
        self._dlc: DlcWriter | None = None
        self._table: AnnotationsWriter | None = None
        self._other_failures: dict[Path, FileFailures] = {}
        self._last_flush = clock()
        self._closed = False
        # Import the file libraries now, not at the first frame (a pause of a second
        # while frames arrive).
        for module, purpose in (("pandas", "writing a DeepLabCut .h5"),
                                ("tables", "writing a DeepLabCut .h5")):
            import_or_explain(module, purpose)
        if fmt == "parquet":
            import_or_explain("pyarrow.parquet", "writing a Parquet annotations table")

    def add(self, stamp_ns: int, stream: str, item: Keypoints | Pose | Behavior) -> int:
        """Add one message's content; return the number of frames written by it (0 or 1).

        Also appends the rows held to the ``.h5`` when ``flush_period`` has passed.
        """
        if self._closed:
            return 0
        written = 0
        for stamp, parts in self.matcher.add(stamp_ns, stream, item):
            names = parts["keypoints"].names
            if ((self.last_stamp_ns is not None and stamp <= self.last_stamp_ns)
                    or (self._names is not None and names != self._names)):
                self.rejected += 1  # stamps went back, or other keypoints than the files'
                continue
            self._write(stamp, parts["keypoints"], parts["pose"], parts["behavior"])
            written += 1
        self.poll()
        return written

    def poll(self) -> None:
        """Append the rows held to the ``.h5`` if ``flush_period`` has passed since the
        last append (call it from a timer, so that they go out when frames stop)."""
        now = self._clock()
        if not self._closed and now - self._last_flush >= self.flush_period:
            self._last_flush = now
            if self._dlc is not None:
                with contextlib.suppress(RecordingWriteError):  # counted by the writer
                    self._dlc.flush()

    @property
    def failures(self) -> dict[Path, FileFailures]:
        """Write failures per file: rows left out, failed writes, the last error."""
        out = {p: FileFailures() for p in self.files}
        for source in (self._dlc.failures if self._dlc else {},
                       self._table.failures if self._table else {}, self._other_failures):
            for path, f in source.items():
                out[path].rows += f.rows
                out[path].writes += f.writes
                out[path].last = f.last or out[path].last
        return out

    @property
    def failed_writes(self) -> int:
        """Failed writes so far, all files together."""
        return sum(f.writes for f in self.failures.values())

    def _open(self, names: tuple[str, ...]) -> None:
        """Open the writers still missing (each retried at the next frame if it fails)."""
        # Files that exist are ours by now: the constructor checked for others'.
        try:
            if self._dlc is None:
                self._dlc = DlcWriter(self.stem, names, overwrite=True, checkpoint_every=0)
        except InputError as exc:
            for path in self.files[:2]:
                self._other_failures.setdefault(path, FileFailures()).add(1, exc)
        try:
            if self._table is None:
                self._table = AnnotationsWriter(self._table_path, names, fmt="csv",
                                                overwrite=True)
        except InputError as exc:
            self._other_failures.setdefault(self._table_path, FileFailures()).add(1, exc)

    def _write(self, stamp: int, kp: Keypoints, pose: Pose, behavior: Behavior) -> None:
        if self._names is None:
            self._start_ns, self._names = stamp, kp.names
        if self._dlc is None or self._table is None:
            self._open(kp.names)
        assert self._start_ns is not None
        where = {n: i for i, n in enumerate(pose.names)}
        xyz = np.full((len(kp.names), 3), np.nan)
        for i, name in enumerate(kp.names):
            if name in where:
                xyz[i] = pose.positions[where[name]]
        record = FrameRecord(
            frame=self.frames, time_s=(stamp - self._start_ns) / 1e9,
            keypoints_2d=_finite(kp.xy), likelihood=np.clip(_finite(kp.confidence), 0.0, 1.0),
            keypoints_3d=_finite(xyz),
            behavior=behavior.label.replace("\n", " ").replace("\r", " "),
            behavior_probability=behavior.probability)
        for writer in (self._dlc, self._table):
            if writer is not None:
                # A failure is counted by the writer; the other files go on.
                with contextlib.suppress(RecordingWriteError):
                    writer.write(record)
        self.frames += 1
        self.last_stamp_ns = stamp

    def summary(self) -> str:
        """One log line: frames written, dropped, the files and their write failures."""
        un = ", ".join(f"{k} {v}" for k, v in self.matcher.unmatched.items())
        failures = self.failures
        if self._names is None:
            files = "no files"
        else:
            final = [p for p in self.files if p != self._table_path or self.fmt == "csv"
                     or p.exists()]
            files = ", ".join(str(p) for p in final)
        failed = [f"{p.name} {f.rows} rows in {f.writes} failed writes (last: {f.last})"
                  for p, f in failures.items() if f.writes]
        return (f"{self.frames} frames written, {self.matcher.dropped} incomplete frames "
                f"dropped (unmatched messages: {un}), {self.rejected} rejected (stamp not after "
                f"the last, or other keypoint names); {files}; write failures: "
                + ("; ".join(failed) if failed else "none"))

    def close(self) -> str:
        """Drop incomplete frames, close the writers (the last ``.h5`` append; the Parquet
        conversion); the summary. Never raises for a failed write: it is in the summary."""
        if not self._closed:
            self._closed = True
            self.matcher.flush()
            for writer in (self._dlc, self._table):
                if writer is not None:
                    with contextlib.suppress(RecordingWriteError):  # counted by it
                        writer.close()
            if self.fmt == "parquet" and self._table is not None:
                try:
                    annotations_csv_to_parquet(self._table_path, self.annotations_path)
                    self._table_path.unlink()
                except (OSError, InputError) as exc:  # the CSV stays: it holds the table
                    self._other_failures.setdefault(self.annotations_path, FileFailures()).add(
                        self.frames, exc)
        return self.summary()
