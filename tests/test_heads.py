"""Attribute heads on real faces, age summaries, and an extra head added by manifest entry alone."""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest

from expression_portrait.errors import ModelError
from expression_portrait.models import load_manifest, sha256_of
from expression_portrait.vision.heads import Head, age_summary, as_distribution
from expression_portrait.vision.pipeline import Pipeline
from expression_portrait.vision.settings import VisionSettings
from vision_helpers import image, manifest, pipeline


@pytest.fixture(scope="module")
def analysis():
    return pipeline()


def judge(analysis, name: str):
    analysis.reset()
    result = analysis.analyze(image(name))
    assert len(result.faces) == 1
    return result.faces[0].heads


def test_happy_photo_is_happy(analysis):
    heads = judge(analysis, "0-f15-hao-ph.jpg")

    assert heads["emotion"].top[0] == "happy"


def test_surprise_photo_is_surprise(analysis):
    heads = judge(analysis, "0-f1-su-ph.jpg")

    assert heads["emotion"].top[0] == "surprise"


def test_astronaut_age_is_plausible(analysis):
    age = judge(analysis, "astronaut.png")["age"]

    assert 25 <= age.expected <= 60
    low, high = age.interval
    assert low < age.expected < high
    assert high - low < 60


def test_head_outputs_are_distributions(analysis):
    heads = judge(analysis, "single_face.jpg")

    assert set(heads) == {"emotion", "age", "gender"}
    for name, result in heads.items():
        assert result.probabilities.dtype == np.float32, name
        assert result.probabilities.shape == (len(result.labels),), name
        assert result.probabilities.sum() == pytest.approx(1.0, abs=1e-5), name
        assert (result.probabilities >= 0).all(), name
    assert heads["gender"].labels == ("female", "male")
    assert heads["emotion"].dataset


def test_age_summary_of_single_bin():
    ages = np.arange(81, dtype=float)
    probabilities = np.zeros(81, np.float32)
    probabilities[30] = 1.0

    expected, (low, high) = age_summary(probabilities, ages)

    assert expected == pytest.approx(30.0)
    assert low == pytest.approx(29.6)
    assert high == pytest.approx(30.4)


def test_age_summary_of_two_bins():
    ages = np.arange(81, dtype=float)
    probabilities = np.zeros(81, np.float32)
    probabilities[[20, 40]] = 0.5

    expected, (low, high) = age_summary(probabilities, ages)

    assert expected == pytest.approx(30.0)
    assert low == pytest.approx(19.7)
    assert high == pytest.approx(40.3)


def test_distribution_from_logits_and_probabilities():
    np.testing.assert_allclose(as_distribution(np.array([0.0, np.log(3.0)]), "softmax"), [0.25, 0.75], rtol=1e-6)
    np.testing.assert_allclose(as_distribution(np.array([-0.001, 0.5, 0.49]), "none"), [0, 0.5 / 0.99, 0.49 / 0.99], rtol=1e-5)


def extra_head_folder(tmp_path, extra: dict) -> str:
    """A models folder with the default detector and one extra head, copied from the committed set."""
    source = manifest()
    folder = tmp_path / "models"
    folder.mkdir()
    detector = source.detector()
    shutil.copy(detector.path, folder / detector.path.name)
    document = {"format": 1, "default_detector": detector.name,
                "models": {detector.name: dict(detector.raw)}}
    document["models"][detector.name]["file"] = detector.path.name
    document["models"].update(extra)
    (folder / "manifest.json").write_text(json.dumps(document))
    return str(folder)


def test_extra_head_from_manifest_entry_alone(tmp_path, analysis):
    # An operator's extra head, here the committed gender model relabelled as an
    # "apparent masculinity" classifier: only the manifest entry is new, no code is.
    gender = manifest().models["gender"]
    entry = copy.deepcopy(dict(gender.raw))
    entry.update(file="operator_masculinity.tflite", title="Masculinity", dataset="dlib faces")
    entry["outputs"] = dict(entry["outputs"], labels=["less masculine", "more masculine"])
    folder = extra_head_folder(tmp_path, {"masculinity": entry})
    shutil.copy(gender.path, f"{folder}/operator_masculinity.tflite")
    assert sha256_of(gender.path) == entry["sha256"]

    extra = Pipeline.from_manifest(folder, VisionSettings())
    result = extra.analyze(image("astronaut.png")).faces[0].heads

    assert list(result) == ["masculinity"]
    head = result["masculinity"]
    assert head.title == "Masculinity"
    assert head.labels == ("less masculine", "more masculine")
    analysis.reset()
    reference = analysis.analyze(image("astronaut.png")).faces[0].raw_heads["gender"]
    np.testing.assert_allclose(head.probabilities, reference.probabilities, atol=1e-6)


def test_extra_head_follows_manifest_colour_order(tmp_path):
    gender = manifest().models["gender"]
    entry = copy.deepcopy(dict(gender.raw))
    entry["input"] = dict(entry["input"], color="bgr")
    entry["file"] = gender.path.name
    folder = extra_head_folder(tmp_path, {"gender_bgr": entry})
    shutil.copy(gender.path, folder)
    normal = Head(gender)
    swapped = Head(load_manifest(folder).models["gender_bgr"])
    chip = pipeline().analyze(image("astronaut.png")).faces[0].chips["gender"]

    assert not np.allclose(normal.run(chip).probabilities, swapped.run(chip).probabilities)
    np.testing.assert_allclose(swapped.run(chip[:, :, ::-1].copy()).probabilities,
                               normal.run(chip).probabilities, atol=1e-6)


def test_label_count_must_match_model(tmp_path):
    gender = manifest().models["gender"]
    entry = copy.deepcopy(dict(gender.raw))
    entry["outputs"] = dict(entry["outputs"], labels=["a", "b", "c"])
    entry["file"] = gender.path.name
    folder = extra_head_folder(tmp_path, {"three": entry})
    shutil.copy(gender.path, folder)

    with pytest.raises(ModelError) as caught:
        Head(load_manifest(folder).models["three"])

    assert "'three'" in str(caught.value)
    assert "'outputs.labels'" in str(caught.value)


def test_input_shape_must_match_model(tmp_path):
    gender = manifest().models["gender"]
    entry = copy.deepcopy(dict(gender.raw))
    entry["input"] = dict(entry["input"], shape=[1, 64, 64, 3], chip=dict(entry["input"]["chip"], size=64))
    entry["file"] = gender.path.name
    folder = extra_head_folder(tmp_path, {"wrong_size": entry})
    shutil.copy(gender.path, folder)

    with pytest.raises(ModelError) as caught:
        Head(load_manifest(folder).models["wrong_size"])

    assert "'wrong_size'" in str(caught.value)
    assert "'input.shape'" in str(caught.value)
