"""``expression-portrait screenshot``: save the running kiosk's current screen as PNG.

The daemon refuses while a visitor is being analysed unless ``--blur-faces`` is
given, because the screen then shows a face. The picture travels over the
control socket and only this command writes it, to the file it is given.
"""

from __future__ import annotations

import argparse
import base64
import time
from pathlib import Path

from expression_portrait import control
from expression_portrait.errors import ControlError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", nargs="?", default=None,
                        help="PNG file to write (default: expression-portrait-YYYYmmdd-HHMMSS.png here)")
    parser.add_argument("--blur-faces", action="store_true",
                        help="blur every camera image, so the screen can be captured during a session")
    parser.add_argument("--socket", metavar="PATH", default=None, help="control socket")


def run(args: argparse.Namespace) -> int:
    output = Path(args.output or time.strftime("expression-portrait-%Y%m%d-%H%M%S.png"))
    if output.suffix.lower() != ".png":
        raise ControlError(f"{output}: the screenshot is a PNG; give a file name ending in .png")
    folder = output.parent
    if not folder.is_dir():
        raise ControlError(f"{output}: folder {folder} does not exist; create it or give another file name")
    if output.is_dir():
        raise ControlError(f"{output} is a folder; give a file name ending in .png")
    result = control.request("screenshot", path=args.socket, blur_faces=args.blur_faces, timeout=20)
    try:
        output.write_bytes(base64.b64decode(result["png_base64"]))
    except OSError as exc:
        raise ControlError(f"{output}: cannot write the screenshot: {exc.strerror}; "
                           "give a file name in a folder you may write to") from exc
    print(f"{output}: screen saved{' with faces blurred' if result['blurred'] else ''}")
    return 0
