"""``expression-portrait logs``: the kiosk's journal, through journalctl."""

from __future__ import annotations

import argparse
import os
import shutil

from expression_portrait.errors import ExpressionPortraitError

UNIT = "expression-portrait.service"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new entries")
    parser.add_argument("-n", "--lines", type=int, default=200, help="entries to show (default: 200)")
    parser.add_argument("--since", default=None, help='start time, as journalctl takes it, e.g. "1 hour ago" or "today"')
    parser.add_argument("--boot", action="store_true", help="only entries from the current boot")
    parser.add_argument("--errors", action="store_true", help="only warnings and errors")
    parser.add_argument("--field", action="append", default=[], metavar="NAME=VALUE",
                        help="only entries with this journal field, e.g. CAMERA_STATE=busy or FAULT=display")


def journalctl_command(args: argparse.Namespace) -> list[str]:
    """Return the journalctl command line for ``args``."""
    if args.lines < 0:
        raise ExpressionPortraitError(f"--lines must be 0 or more, got {args.lines}")
    command = ["journalctl", "--unit", UNIT, "--no-pager", "--lines", str(args.lines), "--output", "short-iso"]
    if args.follow:
        command.append("--follow")
    if args.since:
        command += ["--since", args.since]
    if args.boot:
        command.append("--boot")
    if args.errors:
        command += ["--priority", "warning"]
    for match in args.field:
        name, _, value = match.partition("=")
        if not value or not name.isupper():
            raise ExpressionPortraitError(f"--field {match!r}: expected NAME=VALUE with an upper-case journal field name")
        command.append(f"{name}={value}")
    return command


def run(args: argparse.Namespace) -> int:
    command = journalctl_command(args)
    executable = shutil.which("journalctl")
    if executable is None:
        raise ExpressionPortraitError("journalctl not found: this machine has no systemd journal; "
                                      "run the kiosk in a terminal to see its log on stderr")
    os.execv(executable, command)  # replaces this process, so Ctrl-C and paging behave as journalctl's own
    return 0
