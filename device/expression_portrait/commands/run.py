"""``expression-portrait run``: the kiosk daemon that the systemd service starts."""

from __future__ import annotations

import argparse

from expression_portrait.config import default_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", default=None,
                        help=f"config file (default: {default_path()}, or built-in defaults when absent)")
    parser.add_argument("--replay", metavar="PATH", default=None,
                        help="use a video file or a folder of images instead of the camera, looped in real time")
    parser.add_argument("--display", choices=("headless", "window", "kmsdrm"), default=None,
                        help="override [display] sink: kmsdrm full screen without a desktop, a desktop "
                        "window, or headless (drawn in memory only, nothing written to disk)")


def run(args: argparse.Namespace) -> int:
    from expression_portrait.daemon import run_daemon

    return run_daemon(args.config, replay=args.replay, display=args.display, verbose=args.verbose)
