"""``expression-portrait config check|show|sample [FILE]``: validate or print the config file."""

from __future__ import annotations

import argparse
import os

from expression_portrait.config import (
    EXIT_CONFIG,
    Config,
    default_path,
    dump_toml,
    load_config,
    sample_toml,
)
from expression_portrait.errors import ConfigError, ContentError, ModelError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("check", "show", "sample"),
                        help="check: validate the file, the language files and the model names it "
                        "refers to, and exit non-zero on any problem; "
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
        problems = check_references(loaded.config, str(loaded.path or "built-in defaults"))
        if problems:
            count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
            error = ConfigError(f"the kiosk would not start with this config ({count}):\n  "
                                + "\n  ".join(problems))
            error.exit_code = EXIT_CONFIG
            raise error
        print(f"{source}: OK")
        return 0
    print(f"# effective config from {source}")
    print(dump_toml(loaded.config), end="")
    return 0


def check_references(config: Config, source: str) -> list[str]:
    """Load what a valid config names (language files, models) as the kiosk does at start.

    Returns one problem per failed part, each naming the config file, key and value.
    """
    problems = []
    languages = "[" + ", ".join(f'"{code}"' for code in config.flow.languages) + "]"
    folder = config.content.directory
    try:
        bundle = _load_content(config)
    except ContentError as exc:
        problems.append(f"{source}: [flow] languages = {languages} with [content] directory = "
                        f'"{folder}": {exc}')
        bundle = None

    try:
        manifest = _check_models(config)
    except ModelError as exc:
        keys = [f'[models] directory = "{config.models.directory}"']
        if config.vision.detector is not None:
            keys.append(f'[vision] detector = "{config.vision.detector}"')
        if config.vision.heads is not None:
            keys.append("[vision] heads = [" + ", ".join(f'"{name}"' for name in config.vision.heads) + "]")
        problems.append(f"{source}: {', '.join(keys)}: {exc}")
        manifest = None

    if bundle is not None:
        try:
            _check_fits(config, bundle, manifest)
        except ContentError as exc:
            problems.append(f"{source}: [flow] languages = {languages} with [content] directory = "
                            f'"{folder}": {exc}')
    return problems


def _load_content(config: Config):
    from expression_portrait.daemon import load_content

    return load_content(config)


def _check_models(config: Config):
    from expression_portrait.models import load_manifest

    manifest = load_manifest(config.models.directory or None, verify=False)
    manifest.detector(config.vision.detector)
    known = [entry.name for entry in manifest.heads()]
    unknown = [name for name in config.vision.heads or [] if name not in known]
    if unknown:
        raise ModelError(f"{manifest.path}: no attribute model named {unknown[0]!r}; "
                         f"known: {', '.join(known) or 'none'}")
    return manifest


def _check_fits(config: Config, bundle: dict, manifest) -> None:
    """Draw every screen of every language, as the kiosk does when its display opens."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    from expression_portrait.ui.layout import Fonts
    from expression_portrait.ui.screens import check_fits, extra_heads_from_manifest
    from expression_portrait.ui.settings import SUPPORTED_RESOLUTIONS

    size = (config.display.width, config.display.height)
    sizes = [size] if size in SUPPORTED_RESOLUTIONS else list(SUPPORTED_RESOLUTIONS)
    extra_heads = extra_heads_from_manifest(manifest) if manifest is not None else []
    fonts = Fonts(config.display.font_path)
    codes = list(bundle)
    for index, code in enumerate(codes):
        next_name = bundle[codes[(index + 1) % len(codes)]].name
        check_fits(bundle[code], extra_heads, sizes=sizes, fonts=fonts, next_language=next_name)
