"""The kiosk's config file: /etc/expression-portrait/config.toml, read with tomllib.

Each table of the file is one settings model, owned by the part it configures:

    [camera]   camera.CameraSettings          [display]  ui.settings.DisplaySettings
    [vision]   vision.settings.VisionSettings [buttons]  ui.settings.ButtonSettings
    [flow]     ui.settings.FlowSettings       [content]  ContentSettings (below)
    [control]  control.ControlSettings        [metrics]  metrics.MetricsSettings
    [logging]  logs.LoggingSettings           [models]   ModelsSettings (below)

Every key is optional and has a default, so an empty file is a valid config.
``load_config`` validates the whole file and raises one ConfigError listing
every problem, each naming the file, line, key, value and what is allowed. An
unknown key gets a did-you-mean hint when it resembles a known one.
"""

from __future__ import annotations

import difflib
import os
import re
import textwrap
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from expression_portrait.camera import CameraSettings
from expression_portrait.control import ControlSettings
from expression_portrait.errors import ConfigError
from expression_portrait.logs import LoggingSettings
from expression_portrait.metrics import MetricsSettings
from expression_portrait.ui.settings import ButtonSettings, DisplaySettings, FlowSettings
from expression_portrait.vision.settings import VisionSettings

DEFAULT_PATH = Path("/etc/expression-portrait/config.toml")
CONFIG_ENV = "EXPRESSION_PORTRAIT_CONFIG"

# sysexits.h EX_CONFIG: systemd shows it as status=78/CONFIG.
EXIT_CONFIG = 78


class ContentSettings(BaseModel):
    """The [content] section: where the screens' texts come from."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    directory: str = Field(
        "", description="folder holding a <language>.toml file for each of [flow] languages, used "
        "instead of the packaged content; empty uses the packaged content")


class ModelsSettings(BaseModel):
    """The [models] section: where the TFLite models are and how they run."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    directory: str = Field(
        "", description="folder holding manifest.json and the .tflite files; empty uses "
        "$EXPRESSION_PORTRAIT_MODELS or the models_tflite folder of the installed release")
    num_threads: int = Field(2, ge=1, le=8, description="TFLite interpreter threads per model")


class Config(BaseModel):
    """The whole config file."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    camera: CameraSettings = Field(default_factory=CameraSettings)
    vision: VisionSettings = Field(default_factory=VisionSettings)
    flow: FlowSettings = Field(default_factory=FlowSettings)
    display: DisplaySettings = Field(default_factory=DisplaySettings)
    buttons: ButtonSettings = Field(default_factory=ButtonSettings)
    content: ContentSettings = Field(default_factory=ContentSettings)
    control: ControlSettings = Field(default_factory=ControlSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)


class LoadedConfig(typing.NamedTuple):
    """A validated config and the file it came from (None for built-in defaults)."""

    config: Config
    path: Path | None


def default_path() -> Path:
    """Return $EXPRESSION_PORTRAIT_CONFIG if set, else /etc/expression-portrait/config.toml."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_PATH)


def load_config(path: str | os.PathLike[str] | None = None) -> LoadedConfig:
    """Read and validate a config file.

    Without ``path`` the default file is read if it exists, else the built-in
    defaults apply. A ``path`` that was given must exist. Raises ConfigError
    (exit code 78) listing every problem found.
    """
    explicit = path is not None
    file = Path(path) if explicit else default_path()
    try:
        found = file.exists()
    except OSError as exc:  # e.g. a folder this user may not enter
        raise _config_error([f"{file}: cannot read the config file: {exc.strerror}; run with sudo "
                             "or give a file this user may read"]) from exc
    if not found:
        if explicit or CONFIG_ENV in os.environ:
            raise _config_error([f"{file}: config file not found"])
        return LoadedConfig(Config(), None)
    try:
        # utf-8-sig also accepts the byte order mark some Windows editors write.
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _config_error([f"{file}: not UTF-8 text ({exc}); save the config file as UTF-8"]) from exc
    except IsADirectoryError as exc:
        raise _config_error([f"{file}: is a folder, not a config file; give the path of the .toml file"]) from exc
    except OSError as exc:
        raise _config_error([f"{file}: cannot read the config file: {exc.strerror}; run with sudo "
                             "or give a file this user may read"]) from exc
    return LoadedConfig(parse_config(text, file), file)


def parse_config(text: str, file: str | os.PathLike[str] = "<config>") -> Config:
    """Validate TOML text as a Config; ``file`` is the name used in error messages."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _config_error([f"{file}: not valid TOML: {exc}"]) from exc
    try:
        return Config.model_validate(document)
    except ValidationError as exc:
        problems = [describe_error(error, document, text, str(file)) for error in exc.errors()]
        raise _config_error(problems) from None


def _config_error(problems: list[str]) -> ConfigError:
    count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
    error = ConfigError(f"invalid config ({count}):\n  " + "\n  ".join(problems))
    error.problems = problems
    error.exit_code = EXIT_CONFIG
    return error


def describe_error(error: dict[str, Any], document: dict[str, Any], text: str, file: str) -> str:
    """Turn one pydantic error into "file:line: [section] key = value: problem; allowed: range"."""
    location = tuple(str(part) for part in error["loc"])
    section, key = _split_location(location)
    line = _find_line(text, section, key)
    where = f"{file}:{line}" if line else file
    if section and key:
        shown = f"[{section}] {key}"
    elif section:
        shown = f"[{section}]"
    else:
        shown = key

    if error["type"] == "extra_forbidden":
        known = _field_names(Config, location[:-1])
        hint = difflib.get_close_matches(location[-1], known, n=1, cutoff=0.6)
        suggestion = f"did you mean {hint[0]!r}?" if hint else f"known keys: {', '.join(known)}"
        what = "section" if len(location) == 1 else "key"
        return f"{where}: {shown}: unknown {what}; {suggestion}"

    if error["type"] == "missing":
        return f"{where}: {shown}: required key is missing"

    message = error["msg"].removeprefix("Value error, ")
    value = _lookup(document, location)
    rendered = f" = {_toml_value(value)}" if value is not _ABSENT else ""
    allowed = allowed_values(Config, location)
    suffix = f" (allowed: {allowed})" if allowed and allowed not in message else ""
    return f"{where}: {shown}{rendered}: {message}{suffix}"


def _split_location(location: tuple[str, ...]) -> tuple[str, str]:
    if len(location) == 1:
        return location[0], ""
    # A list item shows as key[index].
    key = location[1] + "".join(f"[{part}]" if part.isdigit() else f".{part}" for part in location[2:])
    return location[0], key


_ABSENT = object()


def _lookup(document: Any, location: tuple[str, ...]) -> Any:
    value = document
    for part in location:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _ABSENT
    return value


def _find_line(text: str, section: str, key: str) -> int | None:
    """Return the 1-based line of ``key`` in table ``section`` (or of the table header)."""
    current = ""
    header_line = None
    base_key = re.split(r"[\[.]", key, maxsplit=1)[0] if key else ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.match(r"^\[\s*([^\]\s]+)\s*\]", line)
        if header:
            current = header.group(1)
            if current == section and header_line is None:
                header_line = number
            continue
        if current == section and base_key and re.match(rf'^"?{re.escape(base_key)}"?\s*=', line):
            return number
    return header_line


def _model_at(model: type[BaseModel], location: tuple[str, ...]) -> type[BaseModel] | None:
    for part in location:
        field = model.model_fields.get(part)
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model


def _field_names(model: type[BaseModel], location: tuple[str, ...]) -> list[str]:
    target = _model_at(model, location)
    return list(target.model_fields) if target is not None else []


def allowed_values(model: type[BaseModel], location: tuple[str, ...]) -> str:
    """Describe what a field accepts, e.g. "1 <= fps <= 60" or "one of 0, 90, 180, 270"."""
    if not location:
        return ""
    parent = _model_at(model, location[:-1])
    field = parent.model_fields.get(location[-1]) if parent is not None else None
    if field is None:
        return ""
    name = location[-1]
    annotation = field.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = type(None) in typing.get_args(annotation)

    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(_toml_value(a) for a in typing.get_args(annotation))
    low = high = ""
    for constraint in field.metadata:
        if isinstance(constraint, annotated_types.Ge):
            low = f"{constraint.ge} <= "
        elif isinstance(constraint, annotated_types.Gt):
            low = f"{constraint.gt} < "
        elif isinstance(constraint, annotated_types.Le):
            high = f" <= {constraint.le}"
        elif isinstance(constraint, annotated_types.Lt):
            high = f" < {constraint.lt}"
    base = args[0] if optional and len(args) == 1 else annotation
    kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
            Path: "a path string"}.get(base, "")
    if low or high:
        text = f"{low}{name}{high}"
        text = f"{kind}, {text}" if kind in ("an integer",) else text
    else:
        text = kind
    if optional and text:
        text += " (leave the key out for the default)"
    return text


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def sample_toml() -> str:
    """Render the defaults as a sample file: each key commented out under its description."""
    lines = [
        "# Expression Portrait kiosk configuration, read from /etc/expression-portrait/config.toml.",
        "# Every key is optional: a key left commented out keeps the default shown.",
        "# Check a change with `expression-portrait config check`, then apply it without",
        "# restarting with `sudo systemctl reload expression-portrait` (SIGHUP).",
        "",
    ]
    for section, model in Config():
        lines.append(f"[{section}]")
        lines.append(f"# {type(model).__doc__.strip().splitlines()[0]}")
        values = model.model_dump(mode="json")
        for key, field in type(model).model_fields.items():
            lines.append("#")
            lines.extend(textwrap.wrap(field.description or "", 94, initial_indent="# ",
                                       subsequent_indent="#   "))
            value = values[key]
            lines.append(f"# {key} = {_toml_value(value)}" if value is not None else f"# {key} =  (unset)")
        lines.append("")
    return "\n".join(lines)


def dump_toml(config: Config) -> str:
    """Render a config as TOML, every key with its effective value (unset optional keys commented)."""
    lines: list[str] = []
    for section, model in config:
        lines.append(f"[{section}]")
        for key, value in model.model_dump(mode="json").items():
            if value is None:
                lines.append(f"# {key} =  (not set)")
            else:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)
