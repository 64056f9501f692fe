"""The ``expression-portrait`` command: the daemon and the technician's tools.

Each subcommand lives in ``expression_portrait.commands.<name>`` and provides
``add_arguments(parser)`` and ``run(args) -> int``. Importing a subcommand's
module is deferred until it is chosen, so ``status`` or ``--version`` start
fast and never touch the camera, the screen or the models.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from expression_portrait import __version__
from expression_portrait.errors import ExpressionPortraitError

# name -> one-line help; the order is the order of ``--help``.
SUBCOMMANDS = {
    "run": "run the kiosk (the systemd service runs this)",
    "demo": "run the kiosk headless on a recorded video and save every screen as PNG",
    "analyze": "detect and judge the faces in image or video files",
    "status": "show the running kiosk's state, speed, hardware and last errors",
    "selftest": "check models, camera, display and buttons",
    "buttons": "show button presses live",
    "screenshot": "save the current screen of the running kiosk as PNG",
    "logs": "show the kiosk's journal (wraps journalctl)",
    "config": "check or show the configuration",
    "media": "fetch and verify the real test photos and videos",
}

EXIT_USAGE = 2


def version_text() -> str:
    """Return the package, runtime and Python versions, one per line."""
    import platform

    import numpy

    from expression_portrait.runtime import find_runtime

    lines = [f"expression-portrait {__version__}"]
    try:
        lines.append(f"tflite runtime: {find_runtime()}")
    except ExpressionPortraitError as exc:
        lines.append(f"tflite runtime: none ({exc})")
    lines.append(f"python {platform.python_version()}, numpy {numpy.__version__}")
    return "\n".join(lines)


class _VersionAction(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print versions and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="expression-portrait",
        description="Expression Portrait kiosk: a visitor performs an emotion and sees how "
        "face models judge it.",
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more: -v for INFO, -vv for DEBUG")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers = {name: sub.add_parser(name, help=text, description=text)
                  for name, text in SUBCOMMANDS.items()}
    return parser, subparsers


def _load_command(name: str):
    try:
        return importlib.import_module(f"expression_portrait.commands.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"expression_portrait.commands.{name}":
            return None
        raise


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the chosen subcommand and return its exit code."""
    argv = sys.argv[1:] if argv is None else argv
    parser, subparsers = build_parser()

    # Let the chosen subcommand add its own options before the full parse.
    chosen = next((a for a in argv if a in SUBCOMMANDS), None)
    module = _load_command(chosen) if chosen else None
    if module is not None:
        module.add_arguments(subparsers[chosen])

    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if module is None:
        print(f"expression-portrait: {args.command}: not built yet", file=sys.stderr)
        return EXIT_USAGE

    if not logging.getLogger().handlers:
        level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(module.run(args) or 0)
    except ExpressionPortraitError as exc:
        if os.environ.get("EXPRESSION_PORTRAIT_DEBUG"):
            raise
        print(f"expression-portrait {args.command}: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except KeyboardInterrupt:
        return 130
