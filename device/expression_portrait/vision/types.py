"""Result types of the face analysis pipeline, shared by the UI and the daemon.

Every coordinate is in pixels of the analysis frame the pipeline was given,
with x to the right and y down. Arrays are float32 unless stated otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Keypoint rows of Detection.keypoints, in BlazeFace (MediaPipe) output order.
# "Left" and "right" are as seen in the image, so LEFT_EYE is the eye on the image's
# left: the person's right eye in an unmirrored camera frame (checked on single_face.jpg).
LEFT_EYE = 0
RIGHT_EYE = 1
NOSE_TIP = 2
MOUTH = 3
LEFT_EAR_TRAGION = 4
RIGHT_EAR_TRAGION = 5
KEYPOINT_NAMES = ("left_eye", "right_eye", "nose_tip", "mouth", "left_ear_tragion", "right_ear_tragion")


@dataclass(frozen=True, eq=False)
class Detection:
    """One face found by the detector."""

    box: np.ndarray  # (4,) x0, y0, x1, y1
    keypoints: np.ndarray  # (6, 2) x, y in KEYPOINT_NAMES order
    score: float  # detector confidence, 0..1

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return (float(self.box[0] + self.box[2]) / 2, float(self.box[1] + self.box[3]) / 2)


@dataclass(frozen=True, eq=False)
class HeadResult:
    """The judgment of one attribute model (emotion, age, gender or an extra head) on one face."""

    name: str  # manifest key, e.g. "emotion"
    title: str  # short label for the screen, e.g. "Emotion"
    task: str  # "classification" or "age"
    labels: tuple[str, ...]  # class names; for age the bins as strings "0".."80"
    probabilities: np.ndarray  # (len(labels),) float32, sums to 1
    dataset: str  # short name of the training data, e.g. "FER2013"
    expected: float | None = None  # age: expected value in years
    interval: tuple[float, float] | None = None  # age: central 80 % interval in years

    @property
    def top(self) -> tuple[str, float]:
        """The most probable label and its probability."""
        index = int(np.argmax(self.probabilities))
        return self.labels[index], float(self.probabilities[index])


@dataclass(frozen=True, eq=False)
class FaceResult:
    """Everything the pipeline found out about one face in one frame."""

    detection: Detection
    track_id: int | None  # stable across frames while the face stays in view, or None when not tracked
    heads: dict[str, HeadResult]  # manifest name -> result (smoothed per track when tracked)
    # The exact pixels each head received, uint8: (64, 64) gray for emotion,
    # (64, 64, 3) and (32, 32, 3) RGB for age and gender. Memory only, never written out.
    chips: dict[str, np.ndarray] = field(default_factory=dict)
    sharpness: float = 0.0  # variance of the Laplacian of the face's gray chip; higher is sharper
    raw_heads: dict[str, HeadResult] = field(default_factory=dict)  # this frame alone, unsmoothed


@dataclass(frozen=True, eq=False)
class FrameResult:
    """The analysis of one frame: every face, and which one is the sitter."""

    frame_size: tuple[int, int]  # (width, height) of the analysis frame
    faces: list[FaceResult]  # every face found, largest first
    sitter: FaceResult | None  # the visitor in front of the kiosk, or None
    timings_ms: dict[str, float] = field(default_factory=dict)  # stage name -> milliseconds


@dataclass(frozen=True, eq=False)
class Verdict:
    """The judgment of one capture, aggregated over several frames of the sitter."""

    heads: dict[str, HeadResult]  # manifest name -> result averaged over the frames used
    frames_used: int
    frame: np.ndarray  # (H, W, 3) RGB uint8: the sharpest analysis frame; memory only
    face: FaceResult  # the sitter in that frame
