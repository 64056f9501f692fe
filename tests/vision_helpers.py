"""Shared loaders for the vision tests: real media, the committed manifest, cached pipelines."""

from __future__ import annotations

import functools

import numpy as np

from expression_portrait import media
from expression_portrait.decode import iter_video_frames, load_image
from expression_portrait.models import load_manifest
from expression_portrait.vision.detect import FaceDetector
from expression_portrait.vision.pipeline import Pipeline
from expression_portrait.vision.settings import VisionSettings

ATTRIBUTE_MODELS = ("emotion", "age", "gender")
DETECTORS = ("detector_short_range", "detector_full_range")


@functools.cache
def manifest():
    return load_manifest()


@functools.cache
def image(name: str) -> np.ndarray:
    array = load_image(media.path(name))
    array.flags.writeable = False  # shared between tests, so no test may change it
    return array


def video_frames(name: str, *, step: int = 1, max_frames: int | None = None) -> list[np.ndarray]:
    frames = iter_video_frames(media.path(name), max_frames=max_frames)
    return [frame for index, frame in enumerate(frames) if index % step == 0]


@functools.cache
def detector(name: str | None = None, **options) -> FaceDetector:
    return FaceDetector(manifest().detector(name), verify=False, **options)


def pipeline(**settings) -> Pipeline:
    """Build a fresh pipeline (own tracker state) from the committed models."""
    return Pipeline(manifest(), VisionSettings(**settings), verify=False)
