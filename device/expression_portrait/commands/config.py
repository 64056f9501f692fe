"""``expression-portrait config check|show|sample [FILE]``: validate or print the config file."""

from __future__ import annotations

import argparse

from expression_portrait.config import default_path, dump_toml, load_config, sample_toml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("check", "show", "sample"),
                        help="check: validate and exit non-zero on any problem; "
                        "show: print every key with its effective value; "
                        "sample: print a commented file with every key at its default")
    parser.add_argument("file", nargs="?", default=None,
                        help=f"config file (default: {default_path()})")


def run(args: argparse.Namespace) -> int:
    if args.action == "sample":
        print(sample_toml(), end="")
        return 0
    loaded = load_config(args.file)  # raises ConfigError (exit 78) listing every problem
    source = str(loaded.path) if loaded.path else f"built-in defaults ({default_path()} does not exist)"
    if args.action == "check":
        print(f"{source}: OK")
        return 0
    print(f"# effective config from {source}")
    print(dump_toml(loaded.config), end="")
    return 0
