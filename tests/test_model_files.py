"""The committed model set: files, hashes, shapes, and answers on real face chips.

These tests need no TensorFlow. They read models_tflite/manifest.json directly,
load every model with whichever TFLite runtime is installed (LiteRT or
tflite-runtime 2.14), and run the attribute models on chips that the device's
own detector and aligner cut from the packaged test media.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from expression_portrait import decode, media
from expression_portrait.models import ChipSpec, default_models_dir, load_manifest
from expression_portrait.runtime import load_interpreter
from expression_portrait.vision.align import FaceAligner
from expression_portrait.vision.detect import FaceDetector

MODELS_DIR = default_models_dir()
MANIFEST = json.loads((MODELS_DIR / "manifest.json").read_text(encoding="utf-8"))
ENTRIES = MANIFEST["models"]
CORE_MODELS = ("detector_short_range", "detector_full_range", "emotion", "age", "gender")
HEADS = ("emotion", "age", "gender")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ssd_anchor_count(ssd: dict) -> int:
    """Anchors per MediaPipe's SsdAnchorsCalculator: layers of one stride share a grid."""
    size = int(ssd["x_scale"])
    per_cell = len(ssd["aspect_ratios"]) + (1 if ssd["interpolated_scale_aspect_ratio"] > 0 else 0)
    total = 0
    for stride in ssd["strides"]:
        cells = -(-size // stride)
        total += cells * cells * per_cell
    return total


def test_manifest_lists_core_models():
    assert MANIFEST["format"] == 1
    for name in CORE_MODELS:
        assert name in ENTRIES, f"{name} is missing from the manifest"
    assert ENTRIES[MANIFEST["default_detector"]]["task"] == "face_detection"


def test_manifest_passes_device_validation():
    manifest = load_manifest(MODELS_DIR)
    assert set(CORE_MODELS) <= set(manifest.models)


@pytest.mark.parametrize("name", CORE_MODELS)
def test_model_file_matches_sha256(name):
    entry = ENTRIES[name]
    path = MODELS_DIR / entry["file"]
    assert path.is_file(), f"{path} not found"
    assert _sha256(path) == entry["sha256"]


@pytest.mark.parametrize("name", CORE_MODELS)
def test_model_provenance_is_complete(name):
    entry = ENTRIES[name]
    for key in ("package", "version", "file", "sha256", "upstream", "licence", "attribution"):
        assert entry["source"].get(key), f"{name}: source.{key} is empty"
    assert len(entry["training_data"]) > 200, f"{name}: training_data is too short to explain anything"
    assert "http" in entry["training_data"], f"{name}: training_data names no source"
    assert entry["quantization"]["scheme"]
    assert entry["quantization"]["calibration"]


@pytest.mark.parametrize("name", CORE_MODELS)
def test_model_licence_text_is_shipped(name):
    source = ENTRIES[name]["source"]
    licences = MODELS_DIR / "LICENCES"
    # A licence with a copyright line (MIT) ships as the package's own text, others as the plain text.
    candidates = [licences / f"{source['licence']}.txt", licences / f"{source['package']}-{source['licence']}.txt"]
    assert any(path.is_file() for path in candidates), f"none of {candidates} exists"
    notice = (licences / "NOTICE.md").read_text(encoding="utf-8")
    assert ENTRIES[name]["file"].split("_")[0] in notice


@pytest.mark.parametrize("name", CORE_MODELS)
def test_model_shapes_match_manifest(name):
    entry = ENTRIES[name]
    interpreter = load_interpreter(MODELS_DIR / entry["file"])

    inputs = interpreter.get_input_details()
    assert len(inputs) == 1
    assert list(inputs[0]["shape"]) == entry["input"]["shape"]
    assert np.dtype(inputs[0]["dtype"]).name == entry["input"]["dtype"]

    outputs = {d["name"]: list(d["shape"]) for d in interpreter.get_output_details()}
    if entry["task"] == "face_detection":
        ssd = entry["outputs"]["ssd"]
        boxes = _ssd_anchor_count(ssd)
        assert outputs[ssd["boxes_tensor"]] == [1, boxes, 4 + 2 * ssd["num_keypoints"]]
        assert outputs[ssd["scores_tensor"]] == [1, boxes, 1]
    else:
        classes = len(entry["outputs"].get("labels") or entry["outputs"]["ages"])
        assert list(outputs.values()) == [[1, classes]]


@pytest.mark.parametrize("name", HEADS)
def test_attribute_model_matches_quantization(name):
    entry = ENTRIES[name]
    scheme = entry["quantization"]["scheme"]
    interpreter = load_interpreter(MODELS_DIR / entry["file"])
    dtypes = [np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()]
    if scheme.startswith("full-integer int8"):
        # Float tensors only at the edges: the float input and output around QUANTIZE and
        # DEQUANTIZE.
        assert dtypes.count("int8") > 10
        assert dtypes.count("float32") <= 2
    elif scheme.startswith("dynamic-range"):
        assert "int8" in dtypes
        assert dtypes.count("float32") > 2
    else:
        assert scheme.startswith("float32")
        assert "int8" not in dtypes


@pytest.mark.parametrize("name", HEADS)
def test_recorded_fidelity_meets_thresholds(name):
    fidelity = ENTRIES[name]["fidelity"]
    assert fidelity["chips"] >= 300
    if name == "age":
        assert fidelity["age_mean_abs_drift_years"] <= 1.0
    else:
        assert fidelity["top1_agreement"] >= {"emotion": 0.98, "gender": 0.99}[name]


# --- the models on real face chips ------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(MODELS_DIR)


@pytest.fixture(scope="module")
def chips_of(manifest):
    """Return a function giving {head name: chip} for the largest face of a media file."""
    detector = FaceDetector(manifest.detector())
    keys = {
        name: (manifest.models[name].input.chip, "gray" if manifest.models[name].input.color == "gray" else "rgb")
        for name in HEADS
    }
    aligner = FaceAligner(list(keys.values()))
    cache = {}

    def cut(media_name: str) -> dict[str, np.ndarray]:
        if media_name not in cache:
            frame = np.ascontiguousarray(decode.load_image(media.path(media_name)))
            detections = detector.detect(frame)
            assert detections, f"no face found in {media_name}"
            chips = aligner.cut(frame, detections[0]).chips
            cache[media_name] = {name: chips[key] for name, key in keys.items()}
        return cache[media_name]

    return cut


def _run_head(manifest, name: str, chip: np.ndarray) -> np.ndarray:
    entry = manifest.models[name]
    assert isinstance(entry.input.chip, ChipSpec)
    pixels = chip.astype(np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if entry.input.color == "bgr":
        pixels = pixels[..., ::-1]
    tensor = (pixels - np.array(entry.input.mean, np.float32)) * np.float32(entry.input.scale)
    interpreter = load_interpreter(entry.path)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor[None].astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0].astype(np.float64)


@pytest.mark.parametrize("media_name", ["0-f15-hao-ph.jpg", "0-f1-su-ph.jpg", "astronaut.png", "single_face.jpg"])
@pytest.mark.parametrize("name", HEADS)
def test_head_outputs_probabilities(manifest, chips_of, name, media_name):
    probabilities = _run_head(manifest, name, chips_of(media_name)[name])
    assert probabilities.shape == (len(manifest.models[name].labels),)
    assert (probabilities >= 0).all()
    # int8 softmax outputs are multiples of 1/256, so their sum may be off by a few steps.
    assert abs(probabilities.sum() - 1.0) < 0.03


def test_happy_photo_is_happy(manifest, chips_of):
    probabilities = _run_head(manifest, "emotion", chips_of("0-f15-hao-ph.jpg")["emotion"])
    assert manifest.models["emotion"].labels[int(probabilities.argmax())] == "happy"


def test_surprise_photo_is_surprise(manifest, chips_of):
    probabilities = _run_head(manifest, "emotion", chips_of("0-f1-su-ph.jpg")["emotion"])
    assert manifest.models["emotion"].labels[int(probabilities.argmax())] == "surprise"


def test_astronaut_age_is_plausible(manifest, chips_of):
    probabilities = _run_head(manifest, "age", chips_of("astronaut.png")["age"])
    ages = np.array(manifest.models["age"].ages)
    expected = float(probabilities @ ages / probabilities.sum())
    assert 25 <= expected <= 60
