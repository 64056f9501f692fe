"""Keep faces apart across frames and pick the sitter.

Faces are matched to the tracks of the previous frames by box IoU (greedy,
highest IoU first). The sitter is the face with the best score, where the score
grows with the face's size and shrinks with its distance from the frame centre.
Once chosen, the sitter keeps its place while its track lives, unless another
face scores at least SITTER_SWITCH_RATIO times better, so a passer-by in the
background does not steal the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from expression_portrait.vision.settings import VisionSettings
from expression_portrait.vision.types import Detection

SITTER_SWITCH_RATIO = 1.5


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the (len(a), len(b)) IoU matrix of two (N, 4) arrays of x0, y0, x1, y1 boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    inter_w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    inter_h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    intersection = inter_w * inter_h
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)


def sitter_score(detection: Detection, frame_size: tuple[int, int], center_weight: float) -> float:
    """Score a face as the sitter: its width relative to the frame, less for distance from centre."""
    width, height = frame_size
    size = detection.width / min(width, height)
    cx, cy = detection.center
    distance = math.hypot(cx - width / 2, cy - height / 2) / math.hypot(width / 2, height / 2)
    return size * max(0.0, 1.0 - center_weight * distance)


@dataclass
class Track:
    """One face followed across frames."""

    track_id: int
    box: np.ndarray
    missed: int = 0  # consecutive frames without a matching face
    frames: int = 1  # frames matched so far
    smoothed: dict[str, np.ndarray] = field(default_factory=dict)  # head name -> running average


class SitterTracker:
    """IoU tracker with per-track smoothing and a sticky sitter choice."""

    def __init__(self, settings: VisionSettings | None = None):
        self.settings = settings or VisionSettings()
        self.tracks: dict[int, Track] = {}
        self.sitter_id: int | None = None
        self._next_id = 1

    def reset(self, *, renumber: bool = False) -> None:
        """Forget every track; with ``renumber``, new tracks count from 1 again.

        The kiosk keeps numbering across sessions, so a face id never means two people.
        """
        self.tracks.clear()
        self.sitter_id = None
        if renumber:
            self._next_id = 1

    def update(self, detections: list[Detection]) -> list[int]:
        """Match this frame's detections to tracks; return one track id per detection."""
        ids = [0] * len(detections)
        track_ids = list(self.tracks)
        unmatched = set(range(len(detections)))
        if detections and track_ids:
            iou = box_iou(np.array([d.box for d in detections]), np.array([self.tracks[t].box for t in track_ids]))
            free_tracks = set(range(len(track_ids)))
            for flat in np.argsort(-iou, axis=None, kind="stable"):
                d, t = divmod(int(flat), len(track_ids))
                if iou[d, t] < self.settings.track_iou:
                    break
                if d in unmatched and t in free_tracks:
                    track = self.tracks[track_ids[t]]
                    track.box = detections[d].box
                    track.missed = 0
                    track.frames += 1
                    ids[d] = track.track_id
                    unmatched.discard(d)
                    free_tracks.discard(t)
            for t in free_tracks:
                self.tracks[track_ids[t]].missed += 1

        for d in sorted(unmatched):
            track = Track(self._next_id, detections[d].box)
            self._next_id += 1
            self.tracks[track.track_id] = track
            ids[d] = track.track_id
        if not detections:
            for track in self.tracks.values():
                track.missed += 1

        # Forget tracks that have been gone too long; a new track needs a new match.
        for track_id in [t for t, track in self.tracks.items() if track.missed > self.settings.track_max_missed]:
            del self.tracks[track_id]
        if self.sitter_id not in self.tracks:
            self.sitter_id = None
        return ids

    def smooth(self, track_id: int, name: str, probabilities: np.ndarray) -> np.ndarray:
        """Blend a head's new probabilities into the track's running average and return it."""
        track = self.tracks[track_id]
        previous = track.smoothed.get(name)
        if previous is None or previous.shape != probabilities.shape:
            blended = probabilities.astype(np.float32)
        else:
            weight = np.float32(self.settings.smoothing)
            blended = weight * probabilities + (1 - weight) * previous
            blended = (blended / blended.sum()).astype(np.float32)
        track.smoothed[name] = blended
        return blended

    def choose_sitter(self, detections: list[Detection], ids: list[int], frame_size: tuple[int, int]) -> int | None:
        """Return the index of the sitter among this frame's detections, or None if there are none."""
        if not detections:
            return None
        weight = self.settings.sitter_center_weight
        scores = [sitter_score(d, frame_size, weight) for d in detections]
        best = int(np.argmax(scores))
        if self.sitter_id in ids:
            current = ids.index(self.sitter_id)
            if scores[best] < SITTER_SWITCH_RATIO * scores[current]:
                return current
        elif self.sitter_id in self.tracks:
            # The sitter was missed this frame but its track lives: stand in, keep the choice.
            return best
        self.sitter_id = ids[best]
        return best
