"""The manifest loader: committed models, rejected fields, corrupted files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from expression_portrait.errors import ModelError
from expression_portrait.models import (
    MODELS_ENV,
    default_models_dir,
    load_manifest,
    sha256_of,
)
from vision_helpers import ATTRIBUTE_MODELS, DETECTORS


@pytest.fixture
def models_copy(tmp_path: Path) -> Path:
    """A writable copy of the committed models folder."""
    source = default_models_dir()
    target = tmp_path / "models"
    target.mkdir()
    document = json.loads((source / "manifest.json").read_text())
    for entry in document["models"].values():
        shutil.copy(source / entry["file"], target / entry["file"])
    (target / "manifest.json").write_text(json.dumps(document))
    return target


def edit_manifest(folder: Path, change) -> None:
    path = folder / "manifest.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def delete(document: dict, model: str, dotted: str) -> None:
    node = document["models"][model]
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    del node[last]


def replace(document: dict, model: str, dotted: str, value) -> None:
    node = document["models"][model]
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value


def test_committed_manifest_lists_every_model():
    manifest = load_manifest()

    for name in DETECTORS + ATTRIBUTE_MODELS:
        assert name in manifest.models
    assert manifest.detector().is_detector
    assert manifest.models["emotion"].labels == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert manifest.models["gender"].labels == ("female", "male")
    assert manifest.models["age"].ages == tuple(float(a) for a in range(81))


def test_committed_files_match_their_hashes():
    manifest = load_manifest(verify=False)

    for entry in manifest.models.values():
        assert sha256_of(entry.path) == entry.sha256, entry.name


def test_default_models_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    assert default_models_dir() == tmp_path

    monkeypatch.delenv(MODELS_ENV)
    assert default_models_dir() == Path(__file__).resolve().parents[1] / "models_tflite"


def test_corrupted_model_rejected_with_both_hashes(models_copy):
    entry = load_manifest(models_copy).models["emotion"]
    data = bytearray(entry.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.path.write_bytes(bytes(data))
    actual = sha256_of(entry.path)

    with pytest.raises(ModelError) as caught:
        load_manifest(models_copy)

    message = str(caught.value)
    assert entry.path.name in message
    assert entry.sha256 in message
    assert actual in message


def test_missing_model_file_rejected(models_copy):
    entry = load_manifest(models_copy).models["gender"]
    entry.path.unlink()

    with pytest.raises(ModelError, match=f"{entry.path.name}.*not found"):
        load_manifest(models_copy)


MISSING_FIELDS = [
    ("emotion", "file"),
    ("emotion", "sha256"),
    ("emotion", "task"),
    ("emotion", "title"),
    ("emotion", "dataset"),
    ("emotion", "input.shape"),
    ("emotion", "input.scale"),
    ("emotion", "input.mean"),
    ("emotion", "input.color"),
    ("emotion", "input.chip.style"),
    ("emotion", "outputs.labels"),
    ("emotion", "outputs.activation"),
    ("age", "outputs.ages"),
    ("gender", "input.chip.size"),
    ("detector_short_range", "outputs.ssd.strides"),
    ("detector_short_range", "outputs.ssd.num_layers"),
]


@pytest.mark.parametrize(("model", "field"), MISSING_FIELDS)
def test_missing_field_names_model_and_field(models_copy, model, field):
    edit_manifest(models_copy, lambda doc: delete(doc, model, field))

    with pytest.raises(ModelError) as caught:
        load_manifest(models_copy)

    message = str(caught.value)
    assert repr(model) in message
    assert repr(field) in message
    assert "missing" in message


INVALID_VALUES = [
    ("emotion", "task", "regression"),
    ("emotion", "sha256", "abc123"),
    ("emotion", "file", "../outside.tflite"),
    ("emotion", "input.shape", [64, 64]),
    ("emotion", "input.scale", -1.0),
    ("emotion", "input.scale", "0.5"),
    ("emotion", "input.color", "rgb"),  # the shape has one channel
    ("emotion", "input.mean", [1.0, 2.0]),
    ("emotion", "input.chip.style", "insightface"),
    ("emotion", "input.chip.size", 48),
    ("emotion", "outputs.labels", ["happy", "happy"]),
    ("emotion", "outputs.activation", "sigmoid"),
    ("age", "outputs.ages", [3, 2, 1]),
    ("gender", "title", ""),
    ("detector_short_range", "outputs.min_score", 1.5),
    ("detector_short_range", "outputs.ssd.strides", [8, 16]),
]


@pytest.mark.parametrize(("model", "field", "value"), INVALID_VALUES)
def test_invalid_field_names_model_and_field(models_copy, model, field, value):
    edit_manifest(models_copy, lambda doc: replace(doc, model, field, value))

    with pytest.raises(ModelError) as caught:
        load_manifest(models_copy)

    message = str(caught.value)
    assert repr(model) in message
    assert repr(field) in message


def test_wrong_format_version_rejected(models_copy):
    edit_manifest(models_copy, lambda doc: doc.update(format=2))

    with pytest.raises(ModelError, match="'format' must be 1"):
        load_manifest(models_copy)


def test_unknown_default_detector_rejected(models_copy):
    edit_manifest(models_copy, lambda doc: doc.update(default_detector="emotion"))

    with pytest.raises(ModelError, match="no face detector named 'emotion'"):
        load_manifest(models_copy)


def test_unreadable_manifest_rejected(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")

    with pytest.raises(ModelError, match="not a readable JSON file"):
        load_manifest(tmp_path)


def test_missing_manifest_names_environment_variable(tmp_path):
    with pytest.raises(ModelError, match=MODELS_ENV):
        load_manifest(tmp_path / "nowhere")
