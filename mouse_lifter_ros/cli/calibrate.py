"""``mouse-lifter calibrate``: the camera's pose over the arena floor, saved as YAML."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from mouse_lifter_ros.cli.arguments import Subparsers, pair, pixel_corners
from mouse_lifter_ros.core.errors import MouseLifterError
from mouse_lifter_ros.core.views import VIEWS

if TYPE_CHECKING:
    import numpy as np

    from mouse_lifter_ros.core.arena import ArenaCalibration
    from mouse_lifter_ros.core.calibration import CameraCalibration


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "calibrate", help="the camera's pose over the arena floor from four picked corners "
        "or a checkerboard/ChArUco image, saved as YAML the nodes load",
        description="Calibrate the camera's pose over the arena floor (mouse_lifter_ros/core/"
        "arena.py) from the arena's four corners of known size in an image (--corners or "
        "--pick) or a checkerboard / ChArUco board lying flat on the floor "
        "(--checkerboard), or an earlier calibration (--from) given a new --bedding, or "
        "measuring it from an image of the board laid on the bedding (--from with "
        "--checkerboard) or from where the bedding meets the walls (--from with --walls). "
        "Prints the reprojection error; exits 1 when the calibration is refused, saying "
        "why.")
    p.add_argument("--intrinsics", default=None,
                   help="camera_calibration YAML (intrinsics); not with --from")
    p.add_argument("--out", required=True, help="arena calibration YAML to write")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--corners", type=pixel_corners, metavar="'x1,y1 x2,y2 x3,y3 x4,y4'",
                      help="pixels of the floor's corners at arena (-w/2,-h/2), (+w/2,-h/2), "
                      "(+w/2,+h/2), (-w/2,+h/2)")
    mode.add_argument("--pick", action="store_true",
                      help="click the four corners in a window showing --image")
    mode.add_argument("--checkerboard", type=pair(int, "9x6"), metavar="COLSxROWS",
                      help="inner corners of a checkerboard (squares with --charuco)")
    p.add_argument("--from", dest="source", default=None, metavar="ARENA.yaml",
                   help="an arena calibration to write again with --bedding, or with the "
                   "bedding measured by --checkerboard from --image of the board on it, or "
                   "by --walls")
    p.add_argument("--bedding", type=float, default=None, metavar="METRES",
                   help="depth of the bedding over the calibrated floor (the board or "
                   "corners lie on the cage floor; the mouse stands on the bedding): the 3D "
                   "nodes place the mouse on it and measure heights from it (default 0)")
    p.add_argument("--walls", default=None, metavar="IMAGE_OR_VIDEO",
                   help="with --from: measure the bedding's depth where its surface meets "
                   "the arena's walls in this image, or in the median of 15 frames of this "
                   "video (the camera not moved since the calibration; the arena's size "
                   "from the calibration or --arena-size)")
    p.add_argument("--arena-size", type=pair(float, "0.46x0.34"), metavar="WxH",
                   help="floor extent along arena x and y, metres (with --corners/--pick, "
                   "or --walls)")
    p.add_argument("--image", default=None, help="image of the arena / board")
    p.add_argument("--square", type=float, default=None, help="board square side, metres")
    p.add_argument("--charuco", action="store_true", help="the board is a ChArUco board")
    p.add_argument("--dictionary", default=None, help="ArUco dictionary (DICT_4X4_50)")
    p.add_argument("--marker", type=float, default=None,
                   help="ChArUco marker side, metres (default: 0.75 square)")
    p.add_argument("--view", choices=VIEWS, default="top",
                   help="with a board: camera above the floor or below a clear floor")
    p.add_argument("--max-error", type=float, default=2.0, metavar="PX",
                   help="refuse an RMS reprojection error above this (default 2 px)")
    p.add_argument("--preview", default=None, metavar="OUT.png",
                   help="draw the outline and axes reprojected onto --image")
    p.set_defaults(func=run, calibrate_parser=p)


def _pick_corners(image_path: str, image: np.ndarray) -> list[tuple[float, float]]:
    """Let the user click the arena's four corners in an OpenCV window."""
    import cv2
    import numpy as np

    hint = (" (pass the corners instead: --corners 'x1,y1 x2,y2 x3,y3 x4,y4', e.g. read "
            "off an image viewer)")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        raise MouseLifterError("--pick needs a display and none is set (no DISPLAY)" + hint)
    picks: list[tuple[float, float]] = []
    title = "mouse-lifter calibrate: click corners 1-4 (right click: undo, Enter: done)"

    def on_mouse(event: int, x: int, y: int, _flags: int, _param: object) -> None:
        if event == cv2.EVENT_LBUTTONDOWN and len(picks) < 4:
            picks.append((float(x), float(y)))
        elif event == cv2.EVENT_RBUTTONDOWN and picks:
            picks.pop()

    try:
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        cv2.setMouseCallback(title, on_mouse)
        print("click the floor's corners in order: arena (-w/2,-h/2), (+w/2,-h/2), "
              "(+w/2,+h/2), (-w/2,+h/2); Enter when done, Esc to give up", file=sys.stderr)
        while True:
            shown = np.array(image, copy=True)
            for i, (x, y) in enumerate(picks):
                cv2.circle(shown, (round(x), round(y)), 5, (0, 0, 255), 2)
                cv2.putText(shown, str(i + 1), (round(x) + 7, round(y) - 7),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 255), 2)
            cv2.imshow(title, shown)
            key = cv2.waitKey(30) & 0xFF
            if key == 27:
                raise MouseLifterError(f"--pick on {image_path}: cancelled")
            if key in (10, 13) and len(picks) == 4:
                break
    except cv2.error as exc:
        raise MouseLifterError(f"--pick cannot open a window: {exc}".strip() + hint) from exc
    finally:
        with contextlib.suppress(cv2.error):
            cv2.destroyAllWindows()
    print("picked --corners '" + " ".join(f"{x:g},{y:g}" for x, y in picks) + "'",
          file=sys.stderr)
    return picks


def run(ns: argparse.Namespace) -> int:
    import numpy as np

    from mouse_lifter_ros.core.arena import (
        arena_from_corners,
        save_arena,
    )
    from mouse_lifter_ros.core.calibration import load_calibration
    from mouse_lifter_ros.core.errors import CalibrationError

    parser: argparse.ArgumentParser = ns.calibrate_parser
    if (ns.source is None) == (ns.intrinsics is None):
        parser.error("--intrinsics YAML is needed, except with --from ARENA.yaml")
    if ns.source is not None:
        return _rewrite(ns, parser)
    if ns.walls is not None:
        parser.error("--walls goes with --from ARENA.yaml (a calibration of the floor)")
    if ns.corners is None and not ns.pick and ns.checkerboard is None:
        parser.error("one of --corners, --pick, --checkerboard or --from is needed")
    corner_mode = ns.corners is not None or ns.pick
    if corner_mode and ns.arena_size is None:
        parser.error("--corners and --pick need --arena-size WxH (metres)")
    if not corner_mode and ns.arena_size is not None:
        parser.error("--arena-size goes with --corners or --pick, not --checkerboard")
    if ns.checkerboard is not None and (ns.square is None or ns.image is None):
        parser.error("--checkerboard needs --square METRES and --image IMG")
    if ns.checkerboard is None and (ns.charuco or ns.dictionary is not None
                                    or ns.marker is not None or ns.square is not None):
        parser.error("--charuco, --dictionary, --marker and --square go with --checkerboard")
    if (ns.pick or ns.preview) and ns.image is None:
        parser.error("--pick and --preview need --image IMG")
    intrinsics = load_calibration(ns.intrinsics)
    # --image is required where it is used
    image = _read_image(ns.image) if ns.image is not None else np.zeros((0, 0, 3), np.uint8)
    try:
        arena: ArenaCalibration
        if ns.checkerboard is not None:
            arena = _board(ns, intrinsics, image, ns.view)
        else:
            corners = ns.corners if ns.corners is not None else _pick_corners(ns.image, image)
            arena = arena_from_corners(intrinsics, corners, ns.arena_size,
                                       max_error=ns.max_error)
        arena = replace(arena, bedding=ns.bedding or 0.0)
    except CalibrationError as exc:
        print(f"mouse-lifter: error: calibration refused: {exc}", file=sys.stderr)
        return 1
    save_arena(ns.out, arena, comment=f"mouse-lifter calibrate ({arena.method}) with "
               f"intrinsics {ns.intrinsics}" + (f" and image {ns.image}" if ns.image else ""))
    tilt = float(np.degrees(np.arccos(min(1.0, abs(float(arena.rotation[2, 2]))))))
    print(f"reprojection error {arena.reprojection_error:.3f} px RMS ({arena.method}); camera "
          f"{arena.floor_distance:.3f} m from the floor ({arena.view} view), optical axis "
          f"{tilt:.1f} degrees off the floor normal{_bedding(arena)}; wrote {ns.out}")
    if ns.preview:
        if ns.checkerboard is not None:
            cols, rows = ns.checkerboard
            span = (cols - (0 if ns.charuco else 1), rows - (0 if ns.charuco else 1))
            outline = (span[0] * ns.square, span[1] * ns.square)
        else:
            outline = ns.arena_size
        _write_preview(ns.preview, image, arena, outline)
        print(f"wrote {ns.preview}")
    return 0


def _bedding(arena: ArenaCalibration) -> str:
    return (f"; the mouse stands on bedding {arena.bedding * 1000:.0f} mm deep"
            if arena.bedding else "")


def _read_image(path: str) -> np.ndarray:
    import cv2

    image: np.ndarray | None = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise MouseLifterError(f"image {path!r} cannot be read")
    return image


def _read_frames(path: str, count: int = 15) -> list[np.ndarray]:
    """An image, or ``count`` frames spread over a video."""
    from pathlib import Path

    import cv2

    from mouse_lifter_ros.core.extract_frames import open_video, read_frame

    image = cv2.imread(path, cv2.IMREAD_COLOR) if os.path.isfile(path) else None
    if image is not None:
        return [image]
    cap, total = open_video(Path(path))
    try:
        frames = [f for k in range(count) if (f := read_frame(cap, k * total // count))
                  is not None]
    finally:
        cap.release()
    if not frames:
        raise MouseLifterError(f"--walls {path!r}: no frame of the video could be read")
    return frames


def _board(ns: argparse.Namespace, intrinsics: CameraCalibration, image: np.ndarray,
           view: str) -> ArenaCalibration:
    """The pose of the --checkerboard in ``image``."""
    from mouse_lifter_ros.core.arena import arena_from_checkerboard

    return arena_from_checkerboard(
        intrinsics, image, pattern=ns.checkerboard, square=ns.square,
        charuco=ns.charuco, dictionary=ns.dictionary or "DICT_4X4_50", marker=ns.marker,
        view=view, max_error=ns.max_error)


def _rewrite(ns: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """--from: the calibration ``ns.source`` again, with the bedding given (--bedding) or
    measured from an image of the board laid on the bedding (--checkerboard)."""
    from mouse_lifter_ros.core.arena import bedding_from_board, load_arena, save_arena
    from mouse_lifter_ros.core.errors import CalibrationError

    if ns.corners is not None or ns.pick:
        parser.error("--corners and --pick do not go with --from")
    if ns.arena_size is not None and ns.walls is None:
        parser.error("--arena-size goes with --from only with --walls")
    if ns.checkerboard is not None and (ns.square is None or ns.image is None
                                        or ns.bedding is not None):
        parser.error("--from with --checkerboard measures the bedding: it needs --square "
                     "METRES and --image of the board laid on the bedding, and no --bedding")
    if ns.walls is not None and (ns.checkerboard is not None or ns.bedding is not None):
        parser.error("--walls measures the bedding: not with --checkerboard or --bedding")
    try:
        floor = load_arena(ns.source)
        bedding = ns.bedding or 0.0
        if ns.checkerboard is not None:
            board = _board(ns, floor.intrinsics, _read_image(ns.image), floor.view)
            bedding = bedding_from_board(floor, board)
        elif ns.walls is not None:
            from mouse_lifter_ros.core.surface import bedding_from_walls

            fit = bedding_from_walls(replace(floor, bedding=0.0), _read_frames(ns.walls),
                                     arena_size=ns.arena_size)
            bedding = fit.depth
            print(f"the walls' foot: {fit.edge_points} points in view, edge {fit.contrast:.1f}"
                  " times the median over depths", file=sys.stderr)
        arena = replace(floor, bedding=bedding)
    except CalibrationError as exc:
        print(f"mouse-lifter: error: calibration refused: {exc}", file=sys.stderr)
        return 1
    how = (f"board image {ns.image}" if ns.checkerboard is not None else
           f"the walls in {ns.walls}" if ns.walls is not None else f"--bedding {bedding:g}")
    save_arena(ns.out, arena, comment=f"mouse-lifter calibrate --from {ns.source}, bedding "
               f"from {how}")
    print(f"camera {arena.floor_distance:.3f} m from the floor ({arena.view} view)"
          f"{_bedding(arena)}; wrote {ns.out}")
    return 0


def _write_preview(path: str, image: np.ndarray, arena: ArenaCalibration,
                   outline: tuple[float, float]) -> None:
    """Draw the outline (w, h metres, centred on the arena origin) and the arena axes."""
    import cv2
    import numpy as np

    canvas = np.array(image, copy=True)
    w, h = outline[0] / 2, outline[1] / 2
    s = np.linspace(-1.0, 1.0, 50)
    edge = np.concatenate([np.stack([s * w, -h + 0 * s], 1), np.stack([w + 0 * s, s * h], 1),
                           np.stack([-s * w, h + 0 * s], 1), np.stack([-w + 0 * s, -s * h], 1)])
    px, _ = arena.project(np.column_stack([edge, np.zeros(len(edge))]))
    cv2.polylines(canvas, [np.round(px).astype(np.int32)], True, (0, 255, 255), 2)
    length = 0.4 * min(outline)
    axes, _ = arena.project(np.array([[0, 0, 0], [length, 0, 0], [0, length, 0],
                                      [0, 0, length]], dtype=np.float64))
    o = tuple(int(v) for v in np.round(axes[0]))
    for end, colour in zip(axes[1:], ((0, 0, 255), (0, 255, 0), (255, 0, 0)), strict=True):
        cv2.arrowedLine(canvas, o, tuple(int(v) for v in np.round(end)), colour, 2)
    if not cv2.imwrite(path, canvas):
        raise MouseLifterError(f"preview {path!r} cannot be written")
