"""Load TFLite models with LiteRT (ai-edge-litert) or, failing that, tflite-runtime.

LiteRT is preferred: on the same full-int8 models tflite-runtime 2.14 measured
up to 10x slower, needs numpy<2 and has no wheels for Python 3.12 or newer.
tflite-runtime stays as the fallback for Raspberry Pi OS bookworm, whose apt
numpy is 1.24.

Set ``EXPRESSION_PORTRAIT_RUNTIME`` to ``litert`` or ``tflite-runtime`` to force one.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expression_portrait.errors import ModelError, RuntimeMissingError

log = logging.getLogger(__name__)

RUNTIME_ENV = "EXPRESSION_PORTRAIT_RUNTIME"


@dataclass(frozen=True)
class Runtime:
    """One importable TFLite interpreter implementation."""

    name: str  # the distribution name, as pip knows it
    version: str
    module: str
    interpreter_class: Any

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


# (distribution, module holding Interpreter), in order of preference.
_CANDIDATES = (
    ("ai-edge-litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite_runtime.interpreter"),
)

_INSTALL_HINT = (
    "no TFLite runtime is installed: install ai-edge-litert "
    "(pip install ai-edge-litert; Python 3.10 to 3.13, numpy 1 or 2) or, on Raspberry Pi OS "
    "bookworm with Python 3.11 and numpy<2, tflite-runtime (pip install tflite-runtime==2.14.0)"
)

_cached: Runtime | None = None


def _candidates() -> tuple[tuple[str, str], ...]:
    forced = os.environ.get(RUNTIME_ENV, "").strip().lower()
    if not forced:
        return _CANDIDATES
    aliases = {"litert": "ai-edge-litert", "ai-edge-litert": "ai-edge-litert",
               "tflite-runtime": "tflite-runtime", "tflite_runtime": "tflite-runtime"}
    if forced not in aliases:
        raise RuntimeMissingError(
            f"{RUNTIME_ENV}={forced!r} is not a known runtime: use 'litert' or 'tflite-runtime'"
        )
    return tuple(c for c in _CANDIDATES if c[0] == aliases[forced])


def find_runtime() -> Runtime:
    """Import the preferred TFLite runtime, or raise RuntimeMissingError naming both."""
    global _cached
    if _cached is not None:
        return _cached

    failures = []
    for dist, module_name in _candidates():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            failures.append(f"{dist}: {exc}")
            continue
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        _cached = Runtime(dist, version, module_name, module.Interpreter)
        log.info("TFLite runtime: %s (%s)", _cached, module_name)
        return _cached

    forced = os.environ.get(RUNTIME_ENV)
    detail = "; ".join(failures)
    prefix = f"{RUNTIME_ENV}={forced} but " if forced else ""
    raise RuntimeMissingError(f"{prefix}{_INSTALL_HINT} ({detail})")


def reset_runtime_cache() -> None:
    """Forget the runtime found so far, so the next call imports again (for tests)."""
    global _cached
    _cached = None


def load_interpreter(path: str | os.PathLike[str], *, num_threads: int = 1) -> Any:
    """Create and allocate an interpreter for the .tflite file at ``path``."""
    if num_threads < 1:
        raise ValueError(f"num_threads must be 1 or more, got {num_threads}")
    path = Path(path)
    runtime = find_runtime()
    try:
        interpreter = runtime.interpreter_class(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: {runtime} cannot load this model: {exc}") from exc
    log.debug("loaded %s with %s, %d thread(s)", path.name, runtime, num_threads)
    return interpreter
