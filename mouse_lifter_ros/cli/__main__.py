"""``python -m mouse_lifter_ros.cli``: the ``mouse-lifter`` command."""

import sys

from mouse_lifter_ros.cli import main

sys.exit(main())
