"""Logging of the daemon: journald under systemd, stderr otherwise.

Under systemd ($JOURNAL_STREAM or $INVOCATION_ID set) records go to journald
with structured fields: systemd-python's JournalHandler when importable, else
stderr lines with a "<N>" priority prefix, which journald parses. Extra
fields are passed as ``extra={"CAMERA_STATE": "missing"}``: upper-case names
become journal fields (``journalctl CAMERA_STATE=missing``) and are appended
as ``key=value`` on stderr.

Two filters sit on every handler:

- ``RepeatFilter`` lets the first WARNING-or-worse record of a kind through
  and holds back identical ones for ``repeat_window_s``; the next one after
  the window reports how many were held back.
- ``FaceDataFilter`` replaces any image array or large bytes argument with a
  short description, so no pixels of a visitor can reach a log.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

SYSLOG_IDENTIFIER = "expression-portrait"

# Python level -> syslog priority, as journald and the "<N>" stderr prefix use them.
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


class LoggingSettings(BaseModel):
    """The [logging] section."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    level: Literal["debug", "info", "warning", "error"] = Field("info", description="lowest level logged")
    journal: Literal["auto", "always", "never"] = Field(
        "auto", description="log to journald: auto when started by systemd, always, or never (stderr)")
    repeat_window_s: float = Field(
        60.0, ge=1.0, le=86400.0,
        description="identical warnings and errors within this many seconds are logged once, then counted")


def under_systemd(environ: dict[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return bool(environ.get("JOURNAL_STREAM") or environ.get("INVOCATION_ID"))


def syslog_priority(levelno: int) -> int:
    for level, priority in _PRIORITIES:
        if levelno >= level:
            return priority
    return 7


def journal_fields(record: logging.LogRecord) -> dict[str, Any]:
    """Return the record's extra fields whose names are valid journal field names."""
    return {key: value for key, value in record.__dict__.items()
            if key.isupper() and not key.startswith("_") and key.replace("_", "").isalnum()}


class RepeatFilter(logging.Filter):
    """Hold back repeats of a WARNING-or-worse record within ``window`` seconds.

    Records count as the same when logger, level and message template match,
    whatever their arguments, so "camera busy (attempt 7)" and "(attempt 8)"
    are one kind.
    """

    def __init__(self, window: float = 60.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], list[float | int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            entry = self._seen.get(key)
            if entry is None or now - entry[0] >= self.window:
                held_back = entry[1] if entry else 0
                self._seen[key] = [now, 0]
                if held_back:
                    record.msg = f"{record.msg} [{held_back} more like this in the last {self.window:.0f} s]"
                    record.REPEATED = str(held_back)
                return True
            entry[1] += 1
            return False


class FaceDataFilter(logging.Filter):
    """Replace image arrays and big byte strings in a record's arguments with a description."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            if isinstance(record.args, dict):
                record.args = {k: _redact(v) for k, v in record.args.items()}
            else:
                record.args = tuple(_redact(arg) for arg in record.args)
        if not isinstance(record.msg, str):
            record.msg = _redact(record.msg)
        return True


def _redact(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.size > 16:
        return f"<{value.dtype} array {'x'.join(map(str, value.shape))} withheld>"
    if isinstance(value, (bytes, bytearray, memoryview)) and len(value) > 256:
        return f"<{len(value)} bytes withheld>"
    return value


class StderrFormatter(logging.Formatter):
    """One line per record; under systemd with a "<N>" priority prefix and no timestamp."""

    def __init__(self, *, for_journal: bool) -> None:
        fmt = "%(levelname)s %(name)s: %(message)s" if for_journal else \
            "%(asctime)s %(levelname)s %(name)s: %(message)s"
        super().__init__(fmt)
        self.for_journal = for_journal

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = journal_fields(record)
        if fields:
            text += " (" + ", ".join(f"{k.lower()}={v}" for k, v in sorted(fields.items())) + ")"
        if self.for_journal:
            priority = syslog_priority(record.levelno)
            text = "\n".join(f"<{priority}>{line}" for line in text.splitlines())
        return text


def _journal_handler() -> logging.Handler | None:
    try:
        from systemd.journal import JournalHandler
    except ImportError:
        return None
    return JournalHandler(SYSLOG_IDENTIFIER=SYSLOG_IDENTIFIER)


def setup_logging(settings: LoggingSettings | None = None, *, verbose: int = 0,
                  stream: Any = None, environ: dict[str, str] | None = None,
                  journal_handler: logging.Handler | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one journald or stderr handler and return it.

    ``verbose`` (the CLI's -v count) lowers the level to INFO or DEBUG.
    ``journal_handler`` replaces systemd-python's JournalHandler, for tests.
    """
    settings = settings or LoggingSettings()
    use_journal = settings.journal == "always" or (settings.journal == "auto" and under_systemd(environ))

    handler: logging.Handler | None = None
    if use_journal:
        handler = journal_handler or _journal_handler()
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(StderrFormatter(for_journal=use_journal))
    handler.addFilter(FaceDataFilter())
    handler.addFilter(RepeatFilter(settings.repeat_window_s))

    level = getattr(logging, settings.level.upper())
    if verbose:
        level = min(level, logging.INFO if verbose == 1 else logging.DEBUG)
    root = logging.getLogger()
    for old in list(root.handlers):
        # Replace our own handler from a previous call and the CLI's basicConfig one; keep any
        # other (a test's capture handler, for instance).
        if getattr(old, "expression_portrait", False) or _is_stderr_handler(old):
            root.removeHandler(old)
    handler.expression_portrait = True
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party chatter that would drown the kiosk's own lines at INFO.
    for noisy in ("PIL", "picamera2", "asyncio"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    return handler


def _is_stderr_handler(handler: logging.Handler) -> bool:
    return type(handler) is logging.StreamHandler and handler.stream in (sys.stderr, sys.__stderr__)


def _read_first_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return file.read().replace("\0", "").strip().splitlines()[0]
    except (OSError, IndexError):
        return ""


def _os_release() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as file:
            for line in file:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _version_of(distribution: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def system_info(extra: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """Return (label, value) pairs describing this machine and software, for bug reports."""
    from expression_portrait import __version__

    memory_kb = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            memory_kb = int(next(line for line in file if line.startswith("MemTotal:")).split()[1])
    except (OSError, StopIteration, ValueError):
        pass
    info = [
        ("expression-portrait", __version__),
        ("board", _read_first_line("/proc/device-tree/model") or platform.machine()),
        ("os", f"{_os_release()}, kernel {platform.release()}"),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("memory", f"{memory_kb // 1024} MiB" if memory_kb else "unknown"),
        ("packages", ", ".join(f"{name} {_version_of(name)}" for name in
                               ("numpy", "pydantic", "pygame-ce", "gpiozero", "av", "Pillow"))),
        ("display driver", os.environ.get("SDL_VIDEODRIVER", "(SDL default)")),
        ("session", "systemd unit" if under_systemd() else "interactive"),
    ]
    info.extend(extra)
    return info


def log_system_info(logger: logging.Logger, extra: Iterable[tuple[str, str]] = ()) -> None:
    """Log the system information as one multi-line INFO record."""
    pairs = system_info(extra)
    width = max(len(label) for label, _ in pairs)
    lines = "\n".join(f"  {label:<{width}}  {value}" for label, value in pairs)
    logger.info("system information:\n%s", lines)
