"""Tracking and sitter choice on videos where a face leaves or arrives, plus synthetic edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from expression_portrait.vision.settings import VisionSettings
from expression_portrait.vision.tracker import SitterTracker, box_iou
from expression_portrait.vision.types import Detection
from vision_helpers import pipeline, video_frames


@pytest.fixture(scope="module")
def analysis():
    return pipeline(heads=["emotion"])


def sitter_ids(analysis, name: str) -> list[int | None]:
    analysis.reset()
    results = [analysis.analyze(frame) for frame in video_frames(name, step=2)]
    return [r.sitter.track_id if r.sitter else None for r in results]


def runs(ids: list[int | None]) -> list[tuple[int | None, int]]:
    """Collapse a sequence into (value, length) runs."""
    collapsed: list[tuple[int | None, int]] = []
    for value in ids:
        if collapsed and collapsed[-1][0] == value:
            collapsed[-1] = (value, collapsed[-1][1] + 1)
        else:
            collapsed.append((value, 1))
    return collapsed


def test_face_leaving_ends_the_sitter(analysis):
    ids = sitter_ids(analysis, "face_noface.mov")

    assert ids[0] is not None
    assert ids[-1] is None
    first = runs(ids)[0]
    assert first[1] >= 10  # one stable track while the face is in view
    assert all(i in (first[0], None) for i in ids[:first[1] + 5])


def test_face_arriving_starts_one_track(analysis):
    ids = sitter_ids(analysis, "noface_face.mov")

    assert ids[0] is None
    tracked = [run for run in runs(ids) if run[0] is not None]
    assert len(tracked) == 1  # the arriving face keeps one id
    assert tracked[0][1] >= 30
    assert ids.index(tracked[0][0]) > len(ids) // 2


def test_tracked_heads_are_smoothed(analysis):
    analysis.reset()
    frames = video_frames("WolfgangLanger_Pexels.mp4", step=4, max_frames=120)
    previous = None

    for frame in frames:
        face = analysis.analyze(frame).sitter
        assert face is not None
        raw = face.raw_heads["emotion"].probabilities
        smooth = face.heads["emotion"].probabilities
        assert smooth.sum() == pytest.approx(1.0, abs=1e-5)
        if previous is not None:
            weight = VisionSettings().smoothing
            expected = weight * raw + (1 - weight) * previous
            np.testing.assert_allclose(smooth, expected / expected.sum(), atol=1e-5)
        previous = smooth


def detection(box) -> Detection:
    box = np.array(box, np.float32)
    return Detection(box=box, keypoints=np.zeros((6, 2), np.float32), score=0.9)


def test_iou_matrix():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))

    np.testing.assert_allclose(iou, [[1.0, 1 / 3, 0.0]])


def test_tracker_keeps_ids_by_overlap():
    tracker = SitterTracker()
    first = tracker.update([detection([0, 0, 100, 100]), detection([300, 0, 400, 100])])

    second = tracker.update([detection([305, 5, 405, 105]), detection([5, 5, 105, 105])])

    assert second == [first[1], first[0]]


def test_tracker_drops_tracks_after_max_missed():
    tracker = SitterTracker(VisionSettings(track_max_missed=2))
    [track_id] = tracker.update([detection([0, 0, 100, 100])])

    for _ in range(3):
        tracker.update([])

    assert track_id not in tracker.tracks
    assert tracker.update([detection([0, 0, 100, 100])]) != [track_id]


def test_sitter_prefers_large_central_face():
    tracker = SitterTracker()
    faces = [detection([0, 0, 60, 60]), detection([270, 190, 370, 290]), detection([500, 380, 640, 480])]
    ids = tracker.update(faces)

    assert tracker.choose_sitter(faces, ids, (640, 480)) == 1


def test_sitter_sticks_until_clearly_beaten():
    tracker = SitterTracker()
    sitter = detection([270, 190, 370, 290])
    ids = tracker.update([sitter])
    assert tracker.choose_sitter([sitter], ids, (640, 480)) == 0

    slightly_bigger = detection([100, 190, 220, 310])
    ids = tracker.update([sitter, slightly_bigger])
    assert tracker.choose_sitter([sitter, slightly_bigger], ids, (640, 480)) == 0

    much_bigger = detection([200, 100, 440, 340])
    ids = tracker.update([detection([0, 0, 60, 60]), much_bigger])
    assert tracker.choose_sitter([detection([0, 0, 60, 60]), much_bigger], ids, (640, 480)) == 1


def test_no_faces_no_sitter():
    tracker = SitterTracker()

    assert tracker.choose_sitter([], tracker.update([]), (640, 480)) is None
