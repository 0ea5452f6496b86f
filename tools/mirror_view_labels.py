"""Write a rig's labelled mirror view (the mouse's underside in a 45-degree mirror) as a
labelled project seen as a camera under the floor would see it
(:func:`mouse_lifter_ros.core.labels.write_mirror_view`), for ``train-2d --view bottom
--labels`` or ``finetune``.

The bottom-view model's real frames (``mouse_lifter_ros/models/keypoints2d_bottom/
MODEL_CARD.md``)::

    tools/ros-env.sh python tools/mirror_view_labels.py \\
        ../shared/data/mirror-mouse-lp/CollectedData.csv --rows 170: --suffix _bot \\
        --out build/mirror_bottom
"""

from __future__ import annotations

import argparse
import sys

from mouse_lifter_ros.core.errors import InputError
from mouse_lifter_ros.core.labels import write_mirror_view


def parse_rows(text: str) -> tuple[int, int | None]:
    """``START:END`` image rows (END left out: to the bottom)."""
    start, sep, end = text.partition(":")
    try:
        if not sep:
            raise ValueError
        a, b = int(start or 0), (int(end) if end else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: START:END image rows, e.g. 170: or "
                                         "0:200") from None
    if a < 0 or (b is not None and b <= a):
        raise argparse.ArgumentTypeError(f"{text!r}: 0 <= START < END")
    return a, b


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("labels", help="the rig's CollectedData .csv/.h5, its folder or project")
    p.add_argument("--rows", required=True, type=parse_rows,
                   help="START:END image rows of the mirror view (END left out: the bottom)")
    p.add_argument("--suffix", required=True, help="its body parts' suffix, e.g. _bot")
    p.add_argument("--out", required=True, help="the new project's folder")
    ns = p.parse_args(argv)
    try:
        files = write_mirror_view(ns.labels, rows=ns.rows, suffix=ns.suffix, out=ns.out)
    except InputError as exc:
        print(f"mirror_view_labels: {exc}", file=sys.stderr)
        return 2
    print("\n".join(f"wrote {f}" for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
