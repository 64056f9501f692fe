"""Turn the frames of one capture into a single verdict.

A capture is the few seconds in which the visitor performs the requested
emotion. The aggregator follows the sitter's track, keeps the sharpest N frames
of it, and averages each head's per-frame (unsmoothed) probabilities over them.
"""

from __future__ import annotations

import numpy as np

from expression_portrait.vision.heads import age_summary
from expression_portrait.vision.types import FaceResult, FrameResult, HeadResult, Verdict


class CaptureAggregator:
    """Collects the sharpest ``frames`` frames of one sitter track during a capture.

    The track is the first sitter seen, unless ``track_id`` is given. Frames are
    copied only when they enter the sharpest N, so at most N frames are held in
    memory, and none is written anywhere.
    """

    def __init__(self, frames: int = 5, *, track_id: int | None = None):
        if frames < 1:
            raise ValueError(f"frames must be 1 or more, got {frames}")
        self.capacity = frames
        self.track_id = track_id
        self.frames_seen = 0
        self._kept: list[tuple[float, int, FaceResult, np.ndarray]] = []  # (sharpness, order, face, frame)

    def add(self, result: FrameResult, frame: np.ndarray) -> bool:
        """Offer one analysed frame; return True if it is among the sharpest so far."""
        face = result.sitter
        if face is None or not face.raw_heads:
            return False
        if self.track_id is None:
            self.track_id = face.track_id
        elif face.track_id != self.track_id:
            return False
        self.frames_seen += 1

        entry = (face.sharpness, self.frames_seen, face, frame)
        if len(self._kept) < self.capacity:
            self._kept.append((*entry[:3], np.array(frame, copy=True)))
            return True
        weakest = min(range(len(self._kept)), key=lambda i: self._kept[i][0])
        if face.sharpness <= self._kept[weakest][0]:
            return False
        self._kept[weakest] = (*entry[:3], np.array(frame, copy=True))
        return True

    @property
    def frames_used(self) -> int:
        return len(self._kept)

    def verdict(self) -> Verdict | None:
        """Average the kept frames into a Verdict, or return None if no frame was kept."""
        if not self._kept:
            return None
        sharpest = max(self._kept, key=lambda item: item[0])
        heads = {}
        for name, template in sharpest[2].raw_heads.items():
            stacked = [item[2].raw_heads[name].probabilities for item in self._kept if name in item[2].raw_heads]
            mean = np.mean(stacked, axis=0).astype(np.float32)
            heads[name] = _with_probabilities(template, mean / mean.sum())
        return Verdict(heads=heads, frames_used=len(self._kept), frame=sharpest[3], face=sharpest[2])


def _with_probabilities(template: HeadResult, probabilities: np.ndarray) -> HeadResult:
    expected = interval = None
    if template.task == "age":
        expected, interval = age_summary(probabilities, np.array([float(a) for a in template.labels]))
    return HeadResult(
        name=template.name,
        title=template.title,
        task=template.task,
        labels=template.labels,
        probabilities=probabilities,
        dataset=template.dataset,
        expected=expected,
        interval=interval,
    )
