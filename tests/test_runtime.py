"""The TFLite runtime adapter: which runtime loads, and the error when there is none."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from expression_portrait import runtime
from expression_portrait.errors import ModelError, RuntimeMissingError


@pytest.fixture(autouse=True)
def fresh_runtime_cache():
    runtime.reset_runtime_cache()
    yield
    runtime.reset_runtime_cache()


@pytest.fixture
def detector_file():
    folder = Path(__file__).resolve().parents[1] / "models_tflite"
    manifest = json.loads((folder / "manifest.json").read_text())
    path = folder / manifest["models"]["detector_short_range"]["file"]
    if not path.exists():
        pytest.fail(f"{path} is missing: the committed model set is incomplete")
    return path


def test_runtime_found_and_named():
    found = runtime.find_runtime()

    assert found.name in {"ai-edge-litert", "tflite-runtime"}
    assert found.version != "unknown"


def test_runtime_runs_detector(detector_file):
    interpreter = runtime.load_interpreter(detector_file, num_threads=2)
    details = interpreter.get_input_details()[0]
    interpreter.set_tensor(details["index"], np.zeros(details["shape"], np.float32))

    interpreter.invoke()

    shapes = sorted(tuple(o["shape"]) for o in interpreter.get_output_details())
    assert shapes == [(1, 896, 1), (1, 896, 16)]


def test_neither_runtime_names_both_packages(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)

    with pytest.raises(RuntimeMissingError) as caught:
        runtime.find_runtime()

    message = str(caught.value)
    assert "pip install ai-edge-litert" in message
    assert "pip install tflite-runtime==2.14.0" in message
    assert isinstance(caught.value, ImportError)


def test_forced_unknown_runtime_rejected(monkeypatch):
    monkeypatch.setenv(runtime.RUNTIME_ENV, "onnx")

    with pytest.raises(RuntimeMissingError, match="'onnx' is not a known runtime"):
        runtime.find_runtime()


def test_forced_runtime_is_used(monkeypatch):
    installed = runtime.find_runtime()
    runtime.reset_runtime_cache()
    monkeypatch.setenv(runtime.RUNTIME_ENV, installed.name)

    assert runtime.find_runtime().name == installed.name


def test_corrupt_model_raises_model_error(tmp_path):
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"TFL3" + b"\x00" * 64)

    with pytest.raises(ModelError, match="broken.tflite"):
        runtime.load_interpreter(broken)


def test_zero_threads_rejected(detector_file):
    with pytest.raises(ValueError, match="num_threads must be 1 or more, got 0"):
        runtime.load_interpreter(detector_file, num_threads=0)


def test_version_flag_prints_runtime():
    result = subprocess.run([sys.executable, "-m", "expression_portrait", "--version"],
                            capture_output=True, text=True, timeout=60)

    assert result.returncode == 0
    assert "expression-portrait " in result.stdout
    assert f"tflite runtime: {runtime.find_runtime()}" in result.stdout
