"""The whole pipeline: results, settings, many faces, and capture aggregation into a verdict."""

from __future__ import annotations

import numpy as np
import pytest

from expression_portrait.errors import ModelError
from expression_portrait.vision.aggregate import CaptureAggregator
from expression_portrait.vision.pipeline import Pipeline
from expression_portrait.vision.settings import VisionSettings
from expression_portrait.vision.types import FrameResult
from vision_helpers import image, pipeline, video_frames


@pytest.fixture(scope="module")
def analysis():
    return pipeline()


def test_from_manifest_builds_every_head():
    built = Pipeline.from_manifest()

    assert set(built.heads) == {"emotion", "age", "gender"}
    assert built.detector.entry.name == built.manifest.default_detector


def test_frame_result_describes_the_sitter(analysis):
    analysis.reset()

    result = analysis.analyze(image("single_face.jpg"))

    assert isinstance(result, FrameResult)
    assert result.frame_size == (572, 562)
    assert result.sitter is result.faces[0]
    face = result.sitter
    assert face.track_id is not None
    assert face.chips["emotion"].shape == (64, 64)
    assert face.chips["age"].shape == (64, 64, 3)
    assert face.chips["gender"].shape == (32, 32, 3)
    assert face.sharpness > 0
    for stage in ("convert", "detect", "align", "emotion", "age", "gender", "track", "invoke", "total"):
        assert result.timings_ms[stage] >= 0, stage
    assert result.timings_ms["invoke"] < result.timings_ms["total"]


def test_no_face_gives_empty_result(analysis):
    result = analysis.analyze(np.full((480, 640, 3), 128, np.uint8))

    assert result.faces == []
    assert result.sitter is None


def test_head_subset_and_unknown_head():
    subset = pipeline(heads=["gender"])
    assert list(subset.analyze(image("astronaut.png")).faces[0].heads) == ["gender"]

    with pytest.raises(ModelError, match="'smile'"):
        pipeline(heads=["smile"])


def test_chips_can_be_left_out():
    face = pipeline(keep_chips=False).analyze(image("astronaut.png")).faces[0]

    assert face.chips == {}
    assert face.heads


def test_settings_reject_unknown_fields():
    with pytest.raises(ValueError, match="extra"):
        VisionSettings(min_scroe=0.5)


def grid_of_faces(rows: int, cols: int) -> np.ndarray:
    face = image("astronaut.png")[60:200, 160:290]  # 140x130, one face with some margin
    tile = np.zeros((160, 150, 3), np.uint8)
    tile[10:150, 10:140] = face
    return np.ascontiguousarray(np.tile(tile, (rows, cols, 1)))


def test_many_faces_are_all_analysed():
    many = pipeline(detector="detector_full_range", min_score=0.5)
    frame = grid_of_faces(4, 6)  # 24 faces in a 900x640 frame

    result = many.analyze(frame)

    assert len(result.faces) >= 20
    assert all(set(face.heads) == {"emotion", "age", "gender"} for face in result.faces)
    assert len({face.track_id for face in result.faces}) == len(result.faces)
    assert result.sitter is not None


def test_max_faces_limits_judged_faces():
    few = pipeline(detector="detector_full_range", min_score=0.5, max_faces=3)

    result = few.analyze(grid_of_faces(4, 6))

    judged = [face for face in result.faces if face.heads]
    assert len(judged) == 3
    assert len(result.faces) >= 20


def test_capture_keeps_sharpest_frames_of_one_track(analysis):
    analysis.reset()
    aggregator = CaptureAggregator(frames=4)
    frames = video_frames("WolfgangLanger_Pexels.mp4", step=6, max_frames=120)
    results = []

    for frame in frames:
        result = analysis.analyze(frame)
        aggregator.add(result, frame)
        results.append(result)
    verdict = aggregator.verdict()

    assert verdict is not None
    assert verdict.frames_used == 4
    assert aggregator.frames_seen == len(frames)
    sharpness = sorted(r.sitter.sharpness for r in results)
    assert verdict.face.sharpness == pytest.approx(sharpness[-1])
    assert any(np.array_equal(verdict.frame, frame) for frame in frames)
    for name, head in verdict.heads.items():
        assert head.probabilities.sum() == pytest.approx(1.0, abs=1e-5), name
    assert 0 < verdict.heads["age"].expected < 80
    sharpest = sorted(sharpness)[-4:]
    used = [r.sitter.raw_heads["emotion"].probabilities for r in results if r.sitter.sharpness in sharpest]
    np.testing.assert_allclose(verdict.heads["emotion"].probabilities, np.mean(used, axis=0), atol=1e-5)


def test_capture_ignores_other_tracks(analysis):
    analysis.reset()
    first = analysis.analyze(image("single_face.jpg"))
    aggregator = CaptureAggregator(frames=3, track_id=first.sitter.track_id + 1000)

    assert aggregator.add(first, image("single_face.jpg")) is False
    assert aggregator.verdict() is None


def test_capture_without_face_has_no_verdict(analysis):
    aggregator = CaptureAggregator()
    empty = analysis.analyze(np.zeros((240, 320, 3), np.uint8))

    assert aggregator.add(empty, np.zeros((240, 320, 3), np.uint8)) is False
    assert aggregator.verdict() is None
    with pytest.raises(ValueError, match="frames must be 1 or more"):
        CaptureAggregator(frames=0)


def test_captured_frame_is_a_copy(analysis):
    analysis.reset()
    frame = np.array(image("single_face.jpg"))
    aggregator = CaptureAggregator(frames=1)
    aggregator.add(analysis.analyze(frame), frame)

    frame[:] = 0

    assert aggregator.verdict().frame.max() > 0
