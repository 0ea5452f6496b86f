"""Recordings written frame by frame, crash-safe: DeepLabCut files and annotation tables.

The recorder node and ``mouse-lifter analyze`` hand one :class:`FrameRecord` per frame
to the writers below; every file they leave is complete and readable up to the last
frame written, whether the recording ends with :meth:`close` (the source ending, or a
SIGINT/SIGTERM handler calling it) or with the process killed.

Files
-----
:class:`DlcWriter` writes the 2D keypoints as DeepLabCut writes its predictions:

``<stem>.h5``
    A pandas DataFrame in an ``HDFStore`` under the key ``df_with_missing``,
    ``format="table"`` as DeepLabCut writes it: index the frame number (int64,
    unnamed), columns a MultiIndex with levels ``scorer`` / ``bodyparts`` / ``coords``,
    coords ``x``, ``y`` (pixels, full source image, origin at the centre of the top-left
    pixel) and ``likelihood`` (0..1), float64, NaN where a keypoint is missing. Read it
    with ``pandas.read_hdf(path)`` or :func:`read_dlc_h5`. The table exists (empty) from
    the start and rows are appended to it (``HDFStore.append``).
``<stem>.csv``
    The same table as DeepLabCut's CSV: three header rows (``scorer``, ``bodyparts``,
    ``coords``), then one row per frame whose first field is the frame number; missing
    values are empty fields. ``pandas.read_csv(path, header=[0, 1, 2], index_col=0)``
    reads it (or :func:`read_dlc_csv`, which also drops a row torn by a hard kill).

:class:`AnnotationsWriter` writes one table, CSV (``fmt="csv"``) or Parquet
(``fmt="parquet"``), whose first columns are those of the Inscopix IDEAS experiment
annotations (as IDEAS' DeepLabCut toolbox writes them)::

    Frame number, Movie number, Local frame number, Time since start (s),
    <part> x, <part> y, <part> likelihood      (for each body part, in order)

followed by this project's additions::

    <part> z (m), <part> X (m), <part> Y (m), <part> Z (m)   (for each body part)
    Behavior, Behavior probability

``<part> x``/``y`` are pixels as in the DeepLabCut files; ``<part> z (m)`` is the
keypoint's depth, its distance along the camera's optical axis (the camera frame's z),
metres; ``<part> X (m)``, ``Y (m)``, ``Z (m)`` its 3D position in the arena frame
(REP-103: X, Y on the floor, Z up, Z = 0 the floor plane), metres; ``Behavior`` the most
probable behaviour label ("" when none) and ``Behavior probability`` its probability
(0..1). Numbers missing are NaN (empty fields in the CSV). The column names are
:data:`FRAME_COLUMN` ... :data:`BEHAVIOR_PROBABILITY_COLUMN` and
:func:`annotation_columns`.

Crash safety and write failures
-------------------------------
CSV files are appended one complete row per frame with a single ``write(2)`` of an
unbuffered file, so the kernel holds every row as soon as :meth:`write` returns: even
SIGKILL leaves a CSV readable up to the last complete row (``fsync=True`` also survives
a power cut, at a cost per frame).

The ``.h5`` holds only the rows not yet appended in memory (bounded, whatever the
length of the recording): they are appended on :meth:`flush`, on :meth:`close` and
after every ``checkpoint_every`` frames, each time opening the file, appending and
closing it again, so between appends the file is closed and complete, and a hard kill
loses the rows since the last append. Before an append the space it needs is reserved
(``posix_fallocate``): HDF5 does not report every failed write of a full disk and would
leave rows of zeros; with the space reserved, a full disk fails the append before the
file is touched.

Parquet cannot be appended; an :class:`AnnotationsWriter` with ``fmt="parquet"`` keeps
its rows in memory and rewrites the whole file, first to ``<name>.tmp`` and then moved
over ``<name>`` with :func:`os.replace` (atomic), on :meth:`close` and every
``checkpoint_every`` frames (for long recordings the recorder writes the CSV and
converts it at the end, :func:`annotations_csv_to_parquet`).

A write that fails (a full disk, an I/O error, a file-size limit) never leaves a torn
row: a CSV row written in part is cut off again (``ftruncate``), an ``.h5`` append is
reserved first. The rows concerned are left out of that file, counted per file in
:attr:`~_Recording.failures`, and :meth:`write` raises :class:`RecordingWriteError`
naming them once it has written the record to the writer's other files; the writer
stays usable, and the next rows are tried again.

:meth:`close` is idempotent and may be called from a signal handler, also while a
:meth:`write` in the same thread is in progress: the close then happens as that write
returns or unwinds (for instance when the handler raises ``SystemExit``). Writers are
thread-safe: a close from another thread waits for a write in progress.

pandas (with PyTables for ``.h5``, pyarrow for Parquet) is imported by the writers and
readers, not by importing this module.
"""

from __future__ import annotations

import csv
import errno
import importlib
import io
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from mouse_lifter_ros.core.errors import InputError, MouseLifterError, ParameterError
from mouse_lifter_ros.core.params import is_int, is_real

if TYPE_CHECKING:
    import pandas as pd

FloatArray = NDArray[np.float64]

#: The pandas key DeepLabCut stores its predictions under in ``.h5`` files.
DLC_H5_KEY: Final = "df_with_missing"
#: Column levels of a DeepLabCut table.
DLC_LEVELS: Final = ("scorer", "bodyparts", "coords")
#: The coords of each body part in a DeepLabCut table.
DLC_COORDS: Final = ("x", "y", "likelihood")

#: Inscopix IDEAS experiment-annotations columns, spelled as IDEAS writes them.
FRAME_COLUMN: Final = "Frame number"
MOVIE_COLUMN: Final = "Movie number"
LOCAL_FRAME_COLUMN: Final = "Local frame number"
TIME_COLUMN: Final = "Time since start (s)"
#: This project's behaviour columns (label, and its probability 0..1).
BEHAVIOR_COLUMN: Final = "Behavior"
BEHAVIOR_PROBABILITY_COLUMN: Final = "Behavior probability"
#: Per body part: IDEAS' 2D columns, then this project's depth and arena-frame columns.
PART_2D_SUFFIXES: Final = ("x", "y", "likelihood")
PART_3D_SUFFIXES: Final = ("z (m)", "X (m)", "Y (m)", "Z (m)")

AnnotationsFormat = Literal["csv", "parquet"]
ANNOTATIONS_FORMATS: Final = ("csv", "parquet")


def annotation_columns(bodyparts: Sequence[str]) -> list[str]:
    """Return the columns of an annotations table for ``bodyparts``, in file order."""
    return [
        FRAME_COLUMN, MOVIE_COLUMN, LOCAL_FRAME_COLUMN, TIME_COLUMN,
        *(f"{p} {s}" for p in bodyparts for s in PART_2D_SUFFIXES),
        *(f"{p} {s}" for p in bodyparts for s in PART_3D_SUFFIXES),
        BEHAVIOR_COLUMN, BEHAVIOR_PROBABILITY_COLUMN,
    ]


@dataclass(frozen=True, eq=False)
class FrameRecord:
    """Everything recorded about one frame; checked and converted on construction.

    Attributes
    ----------
    frame:
        Frame number, >= 0; strictly increasing along a recording.
    time_s:
        Time since the start of the recording, seconds; finite.
    keypoints_2d:
        (K, 2) pixel coordinates ``x, y`` in the full source image; NaN = missing.
    likelihood:
        (K,) detection confidence, 0..1; NaN allowed.
    keypoints_3d:
        (K, 3) positions in the arena frame, metres, NaN where unknown; None: none.
    depth:
        (K,) depth of each keypoint along the camera's optical axis, metres, NaN where
        unknown; None: none.
    behavior:
        Most probable behaviour label; "" when none. No line breaks.
    behavior_probability:
        Its probability, 0..1; NaN when none.
    movie:
        Movie number (IDEAS), >= 0; 0 for a single source.
    local_frame:
        Frame number within the movie, >= 0; None: the same as ``frame``.

    Raises
    ------
    InputError
        Listing every problem: shapes, infinite values, NaN time, negative numbers.

    Notes
    -----
    Arrays are copied to read-only float64 arrays; ``K`` is ``len(likelihood)``.
    """

    frame: int
    time_s: float
    keypoints_2d: NDArray[np.floating[Any]]
    likelihood: NDArray[np.floating[Any]]
    keypoints_3d: NDArray[np.floating[Any]] | None = None
    depth: NDArray[np.floating[Any]] | None = None
    behavior: str = ""
    behavior_probability: float = math.nan
    movie: int = 0
    local_frame: int | None = None

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name in ("frame", "movie", "local_frame"):
            value = getattr(self, name)
            if value is None and name == "local_frame":
                continue
            if not is_int(value) or value < 0:
                problems.append(f"{name} = {value!r}: must be an integer >= 0")
        if not (is_real(self.time_s) and math.isfinite(self.time_s)):
            problems.append(f"time_s = {self.time_s!r}: must be a finite number of seconds")
        k: int | None = None
        like = _float_array(self, "likelihood", problems)
        if like is not None:
            if like.ndim == 1 and like.shape[0] >= 1:
                k = like.shape[0]
            else:
                problems.append(f"likelihood: shape {like.shape}, expected (K,) with K >= 1")
        want = "K" if k is None else str(k)
        for name, width in (("keypoints_2d", 2), ("keypoints_3d", 3), ("depth", 0)):
            arr = _float_array(self, name, problems)
            if arr is None:
                if name == "keypoints_2d" and self.keypoints_2d is None:
                    problems.append(f"keypoints_2d: required, shape ({want}, 2)")
                continue
            shape_ok = arr.ndim == (2 if width else 1) and (k is None or arr.shape[0] == k)
            if not shape_ok or (width and arr.shape[1] != width):
                expected = f"({want}, {width})" if width else f"({want},)"
                problems.append(f"{name}: shape {arr.shape}, expected {expected}"
                                + ("" if k is None else " (K = len(likelihood))"))
        for name in ("likelihood", "keypoints_2d", "keypoints_3d", "depth"):
            arr = getattr(self, name)
            if isinstance(arr, np.ndarray) and arr.dtype == np.float64 and np.isinf(arr).any():
                problems.append(f"{name}: infinite values; use NaN for missing values")
        if not isinstance(self.behavior, str):
            problems.append(f"behavior = {self.behavior!r}: must be a string")
        elif "\n" in self.behavior or "\r" in self.behavior:
            problems.append(f"behavior = {self.behavior!r}: must not contain line breaks")
        p = self.behavior_probability
        if not (is_real(p) and (math.isnan(p) or 0.0 <= p <= 1.0)):
            problems.append(f"behavior_probability = {p!r}: must be in 0..1, or NaN for none")
        if problems:
            raise InputError(f"frame record {self.frame!r}: invalid:\n  " + "\n  ".join(problems))
        object.__setattr__(self, "frame", int(self.frame))
        object.__setattr__(self, "time_s", float(self.time_s))
        object.__setattr__(self, "behavior_probability", float(p))
        object.__setattr__(self, "movie", int(self.movie))
        local = self.frame if self.local_frame is None else int(self.local_frame)
        object.__setattr__(self, "local_frame", local)

    @property
    def num_keypoints(self) -> int:
        """K, the number of keypoints."""
        return int(self.likelihood.shape[0])


def _float_array(record: FrameRecord, name: str, problems: list[str]) -> FloatArray | None:
    """Replace ``record.<name>`` by a read-only float64 copy; None if absent or invalid."""
    value = getattr(record, name)
    if value is None:
        return None
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        problems.append(f"{name}: not an array of numbers ({exc})")
        return None
    arr.setflags(write=False)
    object.__setattr__(record, name, arr)
    return arr


def import_or_explain(module: str, purpose: str) -> Any:
    """Import ``module`` lazily, saying what needs it when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"{purpose} needs the Python package {module!r}, which is not installed: {exc}"
        ) from exc


def _num(value: float) -> str:
    """A CSV field for a float: the shortest exact text, empty for NaN."""
    return "" if math.isnan(value) else repr(float(value))


def _csv_line(fields: Sequence[str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(fields)
    return buf.getvalue().encode("utf-8")


def _complete_csv(path: Path, what: str) -> io.BytesIO:
    """The bytes of ``path`` up to its last line break (drops a row torn by a kill)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{what} '{path}' cannot be read: {exc}") from exc
    return io.BytesIO(data[: data.rfind(b"\n") + 1])


class _Rows:
    """Rows kept in memory: integer columns, float columns, a label; grown by doubling."""

    def __init__(self, n_int: int, n_float: int) -> None:
        self.n = 0
        self.ints = np.zeros((256, n_int), np.int64)
        self.floats = np.zeros((256, n_float), np.float64)
        self.labels: list[str] = []

    def append(self, ints: Sequence[int], floats: FloatArray, label: str) -> None:
        if self.n == len(self.ints):
            self.ints = np.concatenate([self.ints, np.zeros_like(self.ints)])
            self.floats = np.concatenate([self.floats, np.zeros_like(self.floats)])
        self.ints[self.n] = ints
        self.floats[self.n] = floats
        del self.labels[self.n:]
        self.labels.append(label)
        self.n += 1  # last: a row interrupted before this line is not part of the table

    def clear(self) -> None:
        """Forget the rows (the arrays keep their size: no reallocation per batch)."""
        self.n = 0
        self.labels.clear()


@dataclass
class FileFailures:
    """Failed writes of one file: rows left out of it, failed writes, the last error."""

    rows: int = 0
    writes: int = 0
    last: str = ""

    def add(self, rows: int, exc: BaseException) -> None:
        self.rows += rows
        self.writes += 1
        self.last = _error_text(exc)


def _error_text(exc: BaseException) -> str:
    """An error in one line: ``[Errno 28] No space left on device`` or the first line."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"[Errno {exc.errno}] {exc.strerror}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class RecordingWriteError(MouseLifterError, OSError):
    """Rows a writer could not write (a full disk, an I/O error, a file-size limit).

    Raised by :meth:`_Recording.write` after the record went to the writer's other
    files; ``failures`` maps each file to ``(rows left out, error)``. The files hold
    every other row, complete, and the writer takes further rows.
    """

    def __init__(self, what: str, failures: dict[Path, tuple[int, str]]) -> None:
        self.failures = failures
        super().__init__(f"{what}: " + "; ".join(
            f"'{path}': {rows} row(s) not written ({error})"
            for path, (rows, error) in failures.items()))


_R = TypeVar("_R", bound="_Recording")


class _Recording:
    """Shared machinery: validation, CSV appends, checkpoints, close and its re-entrancy."""

    _what = "recording"

    def __init__(
        self,
        name: Path,
        bodyparts: Sequence[str],
        *,
        csv_path: Path | None,
        snapshot_path: Path | None,
        checkpoint_every: int,
        fsync: bool,
        overwrite: bool,
        n_int: int,
        n_float: int,
        problems: list[str],
    ) -> None:
        self.name = name
        self.csv_path, self.snapshot_path = csv_path, snapshot_path
        parts = list(bodyparts) if _names_ok(bodyparts) else []
        if not parts:
            problems.append(f"bodyparts = {bodyparts!r}: must be a non-empty list of names")
        else:
            bad = [p for p in parts if not p.strip() or "\n" in p or "\r" in p]
            dupes = sorted({p for p in parts if parts.count(p) > 1})
            if bad:
                problems.append(f"bodyparts: {bad!r} must be non-empty names without line breaks")
            if dupes:
                problems.append(f"bodyparts: {dupes!r} appear more than once")
        if not is_int(checkpoint_every) or checkpoint_every < 0:
            problems.append(f"checkpoint_every = {checkpoint_every!r}: must be an integer >= 0 "
                            "(frames between checkpoints; 0: only on close)")
        for flag, value in (("fsync", fsync), ("overwrite", overwrite)):
            if not isinstance(value, bool):
                problems.append(f"{flag} = {value!r}: must be true or false")
        if problems:
            raise ParameterError(f"{self._what} '{name}': invalid parameters:\n  "
                                 + "\n  ".join(problems))
        self.bodyparts: tuple[str, ...] = tuple(parts)
        self.checkpoint_every, self.fsync = int(checkpoint_every), fsync
        targets = [p for p in (csv_path, snapshot_path) if p is not None]
        existing = [str(p) for p in targets if p.exists()]
        if existing and not overwrite:
            raise InputError(f"{self._what} '{name}': {', '.join(existing)} already "
                             "exist(s); pass overwrite=True to replace")
        self._rows = _Rows(n_int, n_float)
        self._frames = 0
        self._since_checkpoint = 0
        #: Rows each file holds; failed writes per file (those not in it).
        self.rows: dict[Path, int] = {p: 0 for p in targets}
        self.failures: dict[Path, FileFailures] = {p: FileFailures() for p in targets}
        self._csv_size = 0
        self._csv_torn: OSError | None = None  # a torn row that could not be cut off
        self._last_frame: int | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._closed = self._close_requested = False
        self._accepting = True  # False from the moment a close starts
        self._fd: int | None = None
        try:
            name.parent.mkdir(parents=True, exist_ok=True)
            if snapshot_path is not None:
                self._create()  # the file exists, readable, from the start
            if csv_path is not None:
                self._fd = os.open(csv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                self._append(b"".join(_csv_line(row) for row in self._csv_header()))
        except Exception as exc:  # OSError, or PyTables' HDF5ExtError (a RuntimeError)
            self._release()
            raise InputError(f"{self._what} '{name}' cannot be written: {exc}") from exc

    # -- to be provided by each writer ------------------------------------------------

    def _csv_header(self) -> list[list[str]]:
        return []

    def _encode(self, record: FrameRecord) -> tuple[list[str], FloatArray]:
        """The CSV fields and the float row of ``record``."""
        raise NotImplementedError

    def _ints(self, record: FrameRecord) -> tuple[int, ...]:
        return (record.frame,)

    def _write_snapshot(self, tmp: Path) -> None:
        raise NotImplementedError

    def _create(self) -> None:
        """Create ``snapshot_path`` holding no row."""
        self._snapshot()

    def _checkpoint(self) -> None:
        """Bring ``snapshot_path`` up to date: rewrite it whole from the rows kept."""
        assert self.snapshot_path is not None
        self._snapshot()
        self.rows[self.snapshot_path] = self._rows.n

    # -- public -----------------------------------------------------------------------

    @property
    def frames(self) -> int:
        """Number of frames written (handed to :meth:`write` and accepted)."""
        return self._frames

    @property
    def last_frame(self) -> int | None:
        """The frame number of the last frame written; None before the first."""
        return self._last_frame

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has finished."""
        return self._closed

    def write(self, record: FrameRecord) -> None:
        """Append one frame; checkpoint the ``.h5``/Parquet every ``checkpoint_every``.

        Raises
        ------
        InputError
            When the record has a different number of keypoints than ``bodyparts``, a
            frame number not after the last one written, or the writer is closed.
        RecordingWriteError
            When a file could not take the row (or the checkpoint); the frame counts as
            written, and went to every other file.
        """
        self._local.depth = getattr(self._local, "depth", 0) + 1  # a close now is deferred
        try:
            self._write(record)
        finally:
            self._local.depth -= 1
            if self._close_requested and not self._local.depth:
                self._close()

    def _write(self, record: FrameRecord) -> None:
        if not isinstance(record, FrameRecord):
            raise InputError(f"{self._what} '{self.name}': expected a FrameRecord, "
                             f"got {type(record).__name__}")
        if record.num_keypoints != len(self.bodyparts):
            raise InputError(
                f"{self._what} '{self.name}': frame {record.frame} has "
                f"{record.num_keypoints} keypoints; the recording has {len(self.bodyparts)} "
                f"body parts ({', '.join(self.bodyparts)})"
            )
        fields, floats = self._encode(record)
        line = _csv_line([str(record.frame), *fields])
        with self._lock:
            if not self._accepting:
                raise InputError(f"{self._what} '{self.name}' is closed; "
                                 f"frame {record.frame} not written")
            if self._last_frame is not None and record.frame <= self._last_frame:
                raise InputError(
                    f"{self._what} '{self.name}': frame {record.frame} is not after the "
                    f"last frame written, {self._last_frame}"
                )
            if self.snapshot_path is not None:  # held for the .h5 or the Parquet file
                self._rows.append(self._ints(record), floats, record.behavior)
            self._last_frame = record.frame
            self._frames += 1
            self._since_checkpoint += 1
            failed: dict[Path, tuple[int, str]] = {}
            if self._fd is not None:
                self._csv_row(line, failed)
            every = self.checkpoint_every
            if self.snapshot_path is not None and every and self._since_checkpoint >= every:
                self._try_checkpoint(failed)
        if failed:
            raise RecordingWriteError(f"{self._what} '{self.name}'", failed)

    def flush(self) -> None:
        """Checkpoint now: append the rows held to the ``.h5``, rewrite a Parquet file.

        Raises
        ------
        RecordingWriteError
            When that failed (the rows are left out of the ``.h5``; a Parquet file is
            rewritten with them at the next checkpoint).
        """
        failed: dict[Path, tuple[int, str]] = {}
        with self._lock:
            if self.snapshot_path is not None and self._accepting and self._since_checkpoint:
                self._try_checkpoint(failed)
        if failed:
            raise RecordingWriteError(f"{self._what} '{self.name}'", failed)

    @property
    def pending(self) -> int:
        """Frames written since the last checkpoint (for ``.h5``: held in memory)."""
        return self._since_checkpoint

    def close(self) -> None:
        """Write the final files and close them; idempotent, safe from signal handlers.

        Called from a signal handler that interrupted :meth:`write` in this thread, the
        close is done as that write returns or unwinds (the interrupted frame included).
        A :meth:`write` after :meth:`close` is an :class:`InputError`.

        Raises
        ------
        RecordingWriteError
            When the last append or rewrite failed; the files are closed all the same.
        """
        if getattr(self._local, "depth", 0):  # a signal handler interrupting us
            self._close_requested = True
            return
        self._close()

    def __enter__(self: _R) -> _R:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"{type(self).__name__}('{self.name}', {self.frames} frames, {state})"

    # -- internals --------------------------------------------------------------------

    def _close(self) -> None:
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            with self._lock:
                if self._closed:
                    return
                self._accepting = False
                failed: dict[Path, tuple[int, str]] = {}
                try:
                    if self.snapshot_path is not None:
                        self._try_checkpoint(failed)
                finally:
                    self._release()
                self._closed = True
        finally:
            self._local.depth -= 1
        if failed:
            raise RecordingWriteError(f"{self._what} '{self.name}' closed", failed)

    def _release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            if self.fsync:
                os.fsync(fd)
            os.close(fd)

    def _append(self, data: bytes) -> None:
        """Append ``data`` to the CSV whole, or cut off what of it was written and raise."""
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
            if self.fsync:
                os.fsync(self._fd)
        except OSError as exc:  # name the file: a bare errno says nothing of where
            if len(view) < len(data):  # a part went out: cut it off (no torn row)
                try:
                    os.ftruncate(self._fd, self._csv_size)
                    os.lseek(self._fd, self._csv_size, os.SEEK_SET)
                except OSError as cut:
                    self._csv_torn = OSError(cut.errno, f"a row written in part could not "
                                             f"be cut off: {cut.strerror}", str(self.csv_path))
            raise OSError(exc.errno, exc.strerror, str(self.csv_path)) from exc
        self._csv_size += len(data)

    def _csv_row(self, line: bytes, failed: dict[Path, tuple[int, str]]) -> None:
        """Append one row; a failure is counted (and noted in ``failed``), not raised."""
        assert self.csv_path is not None
        try:
            if self._csv_torn is not None:  # appending after a torn row would garble it
                raise self._csv_torn
            self._append(line)
            self.rows[self.csv_path] += 1
        except OSError as exc:
            self._fail(self.csv_path, 1, exc, failed)

    def _try_checkpoint(self, failed: dict[Path, tuple[int, str]]) -> None:
        assert self.snapshot_path is not None
        try:
            self._checkpoint()
        except Exception as exc:  # OSError, PyTables' HDF5ExtError (a RuntimeError),
            # pandas' ValueError: any failure of this file is counted and named, and the
            # other files go on
            self._fail(self.snapshot_path, self._lost_by_failed_checkpoint(), exc, failed)
        finally:
            self._since_checkpoint = 0

    def _lost_by_failed_checkpoint(self) -> int:
        """Rows a failed checkpoint leaves out of the file: a snapshot keeps its rows for
        the next one, so none, but at the close those it lacks."""
        assert self.snapshot_path is not None
        return 0 if self._accepting else self._frames - self.rows[self.snapshot_path]

    def _fail(self, path: Path, rows: int, exc: BaseException,
              failed: dict[Path, tuple[int, str]]) -> None:
        self.failures[path].add(rows, exc)
        failed[path] = (rows, _error_text(exc))

    def _snapshot(self) -> None:
        assert self.snapshot_path is not None
        final = self.snapshot_path
        tmp = final.with_name(final.name + ".tmp")
        try:
            self._write_snapshot(tmp)
            if self.fsync:
                _fsync_path(tmp)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)  # no half-written .tmp left behind
            raise
        if self.fsync:
            _fsync_path(final.parent)


#: Rows the ``.h5`` table's chunks are sized for (6 hours at 30 fps, and more).
H5_EXPECTED_ROWS: Final = 1_000_000
#: Bytes reserved before an ``.h5`` append beyond its chunks (B-tree nodes, headers).
H5_RESERVE_MARGIN: Final = 256 * 1024


def _reserve(path: Path, nbytes: int) -> None:
    """Allocate ``nbytes`` beyond the end of ``path`` (HDF5 cuts them off at its close).

    Raises ``OSError`` (``ENOSPC``, ``EFBIG``) when they cannot be had; a file system
    without ``fallocate`` is not reserved on.
    """
    fd = os.open(path, os.O_WRONLY)
    try:
        os.posix_fallocate(fd, os.fstat(fd).st_size, nbytes)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
    finally:
        os.close(fd)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DlcWriter(_Recording):
    """Write 2D keypoints as DeepLabCut's ``<stem>.h5`` and ``<stem>.csv``, frame by frame.

    Parameters
    ----------
    path_stem:
        The files' path without extension; ``.h5`` and ``.csv`` are appended (a stem
        ending in ``.h5`` or ``.csv`` is refused). Missing parent folders are created.
    bodyparts:
        Body-part names, in the order of every record's keypoint arrays.
    scorer:
        The ``scorer`` column level (DeepLabCut puts its model name there).
    checkpoint_every:
        Frames between appends to the ``.h5`` (>= 0; 0: only on :meth:`flush` and
        :meth:`close`); the rows in between are held in memory and a hard kill loses
        them from the ``.h5``. The CSV is appended every frame.
    fsync:
        ``os.fsync`` every CSV row and checkpoint (survives a power cut; slower).
    overwrite:
        Replace existing files; otherwise they are an :class:`InputError`.

    Raises
    ------
    ParameterError
        Listing every invalid parameter.
    InputError
        When a file exists (without ``overwrite``) or cannot be written.
    """

    _what = "DeepLabCut recording"
    _h5_chunk_bytes: int  # bytes of one chunk of the .h5 table

    def __init__(
        self,
        path_stem: str | os.PathLike[str],
        bodyparts: Sequence[str],
        *,
        scorer: str = "mouse_lifter_ros",
        checkpoint_every: int = 300,
        fsync: bool = False,
        overwrite: bool = False,
    ) -> None:
        stem = Path(path_stem)
        problems: list[str] = []
        if stem.suffix.lower() in (".h5", ".csv"):
            problems.append(f"path_stem = '{stem}': give the name without .h5/.csv; "
                            "both files are written")
        if not isinstance(scorer, str) or not scorer.strip() or "\n" in scorer:
            problems.append(f"scorer = {scorer!r}: must be a non-empty name")
        self.scorer = scorer
        self.h5_path = Path(f"{stem}.h5")
        super().__init__(
            stem, bodyparts, csv_path=Path(f"{stem}.csv"), snapshot_path=self.h5_path,
            checkpoint_every=checkpoint_every, fsync=fsync, overwrite=overwrite,
            n_int=1, n_float=3 * len(bodyparts) if _names_ok(bodyparts) else 0,
            problems=problems,
        )

    def _csv_header(self) -> list[list[str]]:
        return [
            [DLC_LEVELS[0], *(self.scorer for _ in range(3 * len(self.bodyparts)))],
            [DLC_LEVELS[1], *(p for p in self.bodyparts for _ in DLC_COORDS)],
            [DLC_LEVELS[2], *(c for _ in self.bodyparts for c in DLC_COORDS)],
        ]

    def _encode(self, record: FrameRecord) -> tuple[list[str], FloatArray]:
        row = np.empty(3 * record.num_keypoints)
        row[0::3] = record.keypoints_2d[:, 0]
        row[1::3] = record.keypoints_2d[:, 1]
        row[2::3] = record.likelihood
        return [_num(v) for v in row.tolist()], row

    def _frame(self, n: int) -> pd.DataFrame:
        """The first ``n`` rows held, as DeepLabCut's table."""
        pandas = import_or_explain("pandas", "writing a DeepLabCut .h5")
        columns = pandas.MultiIndex.from_product(
            [[self.scorer], list(self.bodyparts), list(DLC_COORDS)], names=list(DLC_LEVELS)
        )
        frame: pd.DataFrame = pandas.DataFrame(
            self._rows.floats[:n].copy(), columns=columns,
            index=pandas.Index(self._rows.ints[:n, 0].copy(), dtype="int64"))
        return frame

    def _create(self) -> None:
        # PyTables cannot create an empty table from an empty frame: create it with one
        # row, then cut that off. ``expectedrows`` sizes its chunks for long sessions.
        pandas = import_or_explain("pandas", "writing a DeepLabCut .h5")
        import_or_explain("tables", "writing a DeepLabCut .h5")
        self._rows.append((0,), np.zeros(self._rows.floats.shape[1]), "")
        try:
            with pandas.HDFStore(self.h5_path, mode="w") as store:
                store.append(DLC_H5_KEY, self._frame(1), index=False,
                             expectedrows=H5_EXPECTED_ROWS)
                table = store.get_storer(DLC_H5_KEY).table
                table.truncate(0)
                self._h5_chunk_bytes = int(table.chunkshape[0]) * int(table.rowsize)
        finally:
            self._rows.clear()

    def _checkpoint(self) -> None:
        """Append the rows held to the ``.h5`` (opened for it, closed after); they are
        dropped from memory either way."""
        pandas = import_or_explain("pandas", "writing a DeepLabCut .h5")
        n, path = self._rows.n, self.h5_path
        try:
            if not n:
                return
            frame = self._frame(n)
            # Reserve the space first: on a full disk HDF5 loses chunks without an error.
            chunks = -(-n * self._rows.floats.shape[1] * 8 // self._h5_chunk_bytes) + 2
            _reserve(path, chunks * self._h5_chunk_bytes + H5_RESERVE_MARGIN)
            with pandas.HDFStore(path, mode="a") as store:
                table = store.get_storer(DLC_H5_KEY).table
                if table.nrows != self.rows[path]:  # an append that failed in part
                    table.truncate(self.rows[path])
                store.append(DLC_H5_KEY, frame, index=False)
            self.rows[path] += n
            if self.fsync:
                _fsync_path(path)
        finally:
            self._rows.clear()

    def _lost_by_failed_checkpoint(self) -> int:
        return self._since_checkpoint  # the rows held, dropped


class AnnotationsWriter(_Recording):
    """Write the annotations table (IDEAS columns plus depth, 3D and behaviour) per frame.

    Parameters
    ----------
    path:
        The table's file; its extension must be ``.csv`` or ``.parquet`` as ``fmt``
        says. Missing parent folders are created.
    bodyparts:
        Body-part names, in the order of every record's keypoint arrays.
    fmt:
        ``"csv"`` (appended every frame) or ``"parquet"`` (rewritten atomically every
        ``checkpoint_every`` frames and on :meth:`close`).
    checkpoint_every:
        Frames between Parquet rewrites (>= 0; 0: only on :meth:`close`). Unused for CSV.
    fsync:
        ``os.fsync`` every CSV row and checkpoint (survives a power cut; slower).
    overwrite:
        Replace an existing file; otherwise it is an :class:`InputError`.

    Raises
    ------
    ParameterError
        Listing every invalid parameter (an unknown ``fmt``, a mismatched extension).
    InputError
        When the file exists (without ``overwrite``) or cannot be written.
    """

    _what = "annotations table"

    def __init__(
        self,
        path: str | os.PathLike[str],
        bodyparts: Sequence[str],
        *,
        fmt: AnnotationsFormat = "csv",
        checkpoint_every: int = 300,
        fsync: bool = False,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        self.fmt = fmt
        problems: list[str] = []
        if fmt not in ANNOTATIONS_FORMATS:
            problems.append(f"fmt = {fmt!r}: must be one of {', '.join(ANNOTATIONS_FORMATS)}")
        elif self.path.suffix.lower() != f".{fmt}":
            problems.append(f"path = '{self.path}': must end in .{fmt} for fmt = {fmt!r}")
        self.columns = annotation_columns(bodyparts) if _names_ok(bodyparts) else []
        k = len(bodyparts) if _names_ok(bodyparts) else 0
        super().__init__(
            self.path, bodyparts, csv_path=self.path if fmt == "csv" else None,
            snapshot_path=self.path if fmt == "parquet" else None,
            checkpoint_every=checkpoint_every, fsync=fsync, overwrite=overwrite,
            n_int=3, n_float=1 + 7 * k + 1, problems=problems,
        )

    def _csv_header(self) -> list[list[str]]:
        return [self.columns]

    def _ints(self, record: FrameRecord) -> tuple[int, ...]:
        assert record.local_frame is not None  # set by FrameRecord
        return (record.frame, record.movie, record.local_frame)

    def _encode(self, record: FrameRecord) -> tuple[list[str], FloatArray]:
        k = record.num_keypoints
        row = np.full(1 + 7 * k + 1, np.nan)
        row[0] = record.time_s
        flat2d = row[1:1 + 3 * k]
        flat2d[0::3] = record.keypoints_2d[:, 0]
        flat2d[1::3] = record.keypoints_2d[:, 1]
        flat2d[2::3] = record.likelihood
        flat3d = row[1 + 3 * k:1 + 7 * k]
        if record.depth is not None:
            flat3d[0::4] = record.depth
        if record.keypoints_3d is not None:
            for axis in range(3):
                flat3d[1 + axis::4] = record.keypoints_3d[:, axis]
        row[-1] = record.behavior_probability
        values = [_num(v) for v in row.tolist()]
        fields = [str(record.movie), str(record.local_frame), *values[:-1],
                  record.behavior, values[-1]]
        return fields, row

    def _write_snapshot(self, tmp: Path) -> None:
        pandas = import_or_explain("pandas", "writing a Parquet annotations table")
        import_or_explain("pyarrow", "writing a Parquet annotations table")
        n = self._rows.n
        ints, floats = self._rows.ints[:n], self._rows.floats[:n]
        data: dict[str, Any] = {
            FRAME_COLUMN: ints[:, 0].copy(), MOVIE_COLUMN: ints[:, 1].copy(),
            LOCAL_FRAME_COLUMN: ints[:, 2].copy(),
        }
        for j, column in enumerate(self.columns[3:-2]):
            data[column] = floats[:, j].copy()
        data[BEHAVIOR_COLUMN] = pandas.array(self._rows.labels[:n], dtype=str)
        data[BEHAVIOR_PROBABILITY_COLUMN] = floats[:, -1].copy()
        pandas.DataFrame(data, columns=self.columns).to_parquet(tmp, index=False)


def _names_ok(bodyparts: object) -> bool:
    return isinstance(bodyparts, Sequence) and not isinstance(bodyparts, str) and all(
        isinstance(p, str) for p in bodyparts
    )


def read_dlc_h5(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a DeepLabCut ``.h5`` (key ``df_with_missing``) as a DataFrame.

    Raises
    ------
    InputError
        When the file is missing or holds no DeepLabCut table.
    """
    pandas = import_or_explain("pandas", "reading a DeepLabCut .h5")
    import_or_explain("tables", "reading a DeepLabCut .h5")
    p = Path(path)
    if not p.is_file():
        raise InputError(f"DeepLabCut file '{p}' does not exist")
    try:
        df: pd.DataFrame = pandas.read_hdf(p, key=DLC_H5_KEY)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:  # RuntimeError:
        # PyTables' HDF5ExtError, for a file that is not HDF5
        raise InputError(f"DeepLabCut file '{p}' holds no readable table "
                         f"{DLC_H5_KEY!r}: {exc}") from exc
    return df


def read_dlc_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a DeepLabCut CSV like :func:`read_dlc_h5` (MultiIndex columns).

    The index is int64 frame numbers for a recording, and stays the image paths for a
    labelled-data file (``CollectedData_*.csv``). A last row without its line break
    (torn by a hard kill) is left out.
    """
    pandas = import_or_explain("pandas", "reading a DeepLabCut CSV")
    p = Path(path)
    data = _complete_csv(p, "DeepLabCut CSV")
    try:
        df: pd.DataFrame = pandas.read_csv(data, header=[0, 1, 2], index_col=0)
    except (ValueError, IndexError) as exc:
        raise InputError(f"DeepLabCut CSV '{p}' cannot be parsed: {exc}") from exc
    if list(df.columns.names) != list(DLC_LEVELS):
        raise InputError(f"DeepLabCut CSV '{p}': header rows {list(df.columns.names)}, "
                         f"expected {list(DLC_LEVELS)}")
    if pandas.api.types.is_numeric_dtype(df.index):
        df.index = pandas.Index(np.asarray(df.index, dtype=np.int64), dtype="int64")
    return df.astype(np.float64)


def read_annotations(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an annotations table (``.csv`` or ``.parquet``, by extension).

    Frame, movie and local frame columns come back as int64, ``Behavior`` as strings
    ("" for none), every other column as float64 with NaN where missing. A CSV's last
    row without its line break (torn by a hard kill) is left out.

    Raises
    ------
    InputError
        When the file is missing, has another extension, or cannot be parsed.
    """
    pandas = import_or_explain("pandas", "reading an annotations table")
    p = Path(path)
    ext = p.suffix.lower().lstrip(".")
    if ext not in ANNOTATIONS_FORMATS:
        raise InputError(f"annotations table '{p}': extension .{ext} is not one of "
                         f".{', .'.join(ANNOTATIONS_FORMATS)}")
    if not p.is_file():
        raise InputError(f"annotations table '{p}' does not exist")
    try:
        if ext == "parquet":
            import_or_explain("pyarrow", "reading a Parquet annotations table")
            df: pd.DataFrame = pandas.read_parquet(p)
        else:
            data = _complete_csv(p, "annotations table")
            df = pandas.read_csv(data, **_annotations_csv_options(data))
    except (OSError, ValueError) as exc:
        raise InputError(f"annotations table '{p}' cannot be read: {exc}") from exc
    if BEHAVIOR_COLUMN in df.columns:
        df[BEHAVIOR_COLUMN] = df[BEHAVIOR_COLUMN].fillna("").astype(str)
    return df


def _annotations_csv_options(data: io.BytesIO) -> dict[str, Any]:
    """``pandas.read_csv`` options for an annotations CSV: the dtypes of its columns."""
    pandas = import_or_explain("pandas", "reading an annotations table")
    names = pandas.read_csv(io.BytesIO(data.getvalue()[:1 << 16]), nrows=0).columns.tolist()
    ints = {FRAME_COLUMN, MOVIE_COLUMN, LOCAL_FRAME_COLUMN}
    dtypes = {c: ("int64" if c in ints else str if c == BEHAVIOR_COLUMN else "float64")
              for c in names}
    na = {c: [""] for c in names if dtypes[c] == "float64"}
    return {"dtype": dtypes, "keep_default_na": False, "na_values": na}


def annotations_csv_to_parquet(src: str | os.PathLike[str], dst: str | os.PathLike[str], *,
                               chunk_rows: int = 50_000) -> int:
    """Convert an annotations CSV to Parquet, ``chunk_rows`` rows at a time; the row count.

    The Parquet file reads back (:func:`read_annotations`) as the CSV does, and as an
    :class:`AnnotationsWriter` with ``fmt="parquet"`` would have written it. Memory holds
    one chunk; ``dst`` is written as ``<dst>.tmp`` and moved over ``dst`` when complete.
    A last CSV row torn by a hard kill is left out.

    Raises
    ------
    InputError
        When ``src`` cannot be read or parsed.
    OSError
        When ``dst`` cannot be written (no ``.tmp`` is left behind).
    """
    pandas = import_or_explain("pandas", "writing a Parquet annotations table")
    pa = import_or_explain("pyarrow", "writing a Parquet annotations table")
    pq = import_or_explain("pyarrow.parquet", "writing a Parquet annotations table")
    source, final = Path(src), Path(dst)
    tmp = final.with_name(final.name + ".tmp")
    data = _complete_csv(source, "annotations table")
    rows = 0
    try:
        options = _annotations_csv_options(data)
        with pandas.read_csv(data, chunksize=chunk_rows, **options) as chunks:
            writer = None
            try:
                for chunk in chunks:
                    chunk[BEHAVIOR_COLUMN] = chunk[BEHAVIOR_COLUMN].fillna("").astype(str)
                    table = pa.Table.from_pandas(chunk, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table.cast(writer.schema))
                    rows += len(chunk)
                if writer is None:  # no row: the columns of an empty table
                    empty = pandas.read_csv(io.BytesIO(data.getvalue()), nrows=0, **options)
                    empty.to_parquet(tmp, index=False)
            finally:
                if writer is not None:
                    writer.close()
        os.replace(tmp, final)
    except ValueError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"annotations table '{source}' cannot be parsed: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows
