"""``mouse-lifter bag-info``: list a rosbag2's topics."""

from __future__ import annotations

import argparse

from mouse_lifter_ros.cli.arguments import Subparsers


def register(sub: Subparsers) -> None:
    p = sub.add_parser("bag-info", help="list the topics of a rosbag2 folder")
    p.add_argument("bag")
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    from mouse_lifter_ros.core.bag import bag_topics

    for topic in bag_topics(ns.bag):
        print(f"{topic.name}\t{topic.msgtype}\t{topic.count}")
    return 0
