"""The face analysis pipeline: frame in, every face with its judgments out.

One ``analyze`` call converts the frame, detects faces, cuts each face's chips
with one alignment, runs every attribute head on every face (largest first, up
to max_faces), tracks the faces and picks the sitter. It keeps tracking state, so
one thread at a time may call it; the kiosk calls it from its inference thread.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from expression_portrait.errors import ModelError
from expression_portrait.models import ChipSpec, Manifest, load_manifest
from expression_portrait.vision.align import FaceAligner, laplacian_variance
from expression_portrait.vision.detect import FaceDetector
from expression_portrait.vision.frames import to_rgb
from expression_portrait.vision.heads import Head
from expression_portrait.vision.settings import VisionSettings
from expression_portrait.vision.tracker import SitterTracker
from expression_portrait.vision.types import FaceResult, FrameResult, HeadResult

log = logging.getLogger(__name__)


class Pipeline:
    """Detector, aligner, heads and sitter tracker built from one manifest."""

    def __init__(self, manifest: Manifest, settings: VisionSettings | None = None, *,
                 num_threads: int = 1, verify: bool = True):
        self.manifest = manifest
        self.settings = settings or VisionSettings()
        s = self.settings

        self.detector = FaceDetector(
            manifest.detector(s.detector), num_threads=num_threads, min_score=s.min_score,
            nms_iou=s.nms_iou, min_face_size=s.min_face_size, verify=verify,
        )
        entries = manifest.heads()
        if s.heads is not None:
            by_name = {e.name: e for e in entries}
            unknown = [n for n in s.heads if n not in by_name]
            if unknown:
                raise ModelError(
                    f"{manifest.path}: vision.heads names {', '.join(map(repr, unknown))}, which the "
                    f"manifest does not list as attribute models; known: {', '.join(by_name) or 'none'}"
                )
            entries = [by_name[n] for n in s.heads]
        self.heads = {e.name: Head(e, num_threads=num_threads, verify=verify) for e in entries}

        specs: dict[tuple[ChipSpec, str], None] = {}
        for head in self.heads.values():
            specs[(head.chip, head.chip_color)] = None
        self._chip_keys = list(specs)
        self.aligner = FaceAligner(self._chip_keys)
        self.tracker = SitterTracker(s)
        log.info("vision pipeline: detector %s, heads %s, %d thread(s)",
                 self.detector.entry.name, ", ".join(self.heads) or "none", num_threads)

    @classmethod
    def from_manifest(cls, models_dir: str | os.PathLike[str] | None = None,
                      settings: VisionSettings | None = None, num_threads: int = 1) -> Pipeline:
        """Load the manifest (default: default_models_dir()), verify every file and build the pipeline."""
        manifest = load_manifest(models_dir, verify=True)
        return cls(manifest, settings, num_threads=num_threads, verify=False)

    def reset(self, *, renumber: bool = False) -> None:
        """Forget every track, e.g. when a new visitor session starts (see SitterTracker.reset)."""
        self.tracker.reset(renumber=renumber)

    def analyze(self, frame: np.ndarray, *, color: str = "rgb") -> FrameResult:
        """Analyse one frame (see frames.to_rgb for what it accepts); never writes it anywhere."""
        timings: dict[str, float] = {}
        clock = time.perf_counter()
        start = clock

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = timings.get(stage, 0.0) + (now - clock) * 1000
            clock = now

        rgb = to_rgb(frame, color=color)
        image = self.aligner.prepare(rgb)  # one Pillow copy serves detection and alignment
        lap("convert")
        detections = self.detector.detect(rgb, image)
        invoke_ms = self.detector.last_invoke_ms
        lap("detect")

        faces = []
        for index, detection in enumerate(detections):
            if index >= self.settings.max_faces:
                faces.append(FaceResult(detection=detection, track_id=None, heads={}))
                continue
            cut = self.aligner.cut(image, detection)
            chips = {name: cut.chips[(head.chip, head.chip_color)] for name, head in self.heads.items()}
            lap("align")
            raw_heads = {}
            for name, head in self.heads.items():
                raw_heads[name] = head.run(chips[name])
                invoke_ms += head.last_invoke_ms
                lap(name)
            faces.append(FaceResult(
                detection=detection, track_id=None, heads=raw_heads,
                chips=chips if self.settings.keep_chips else {},
                sharpness=_sharpness(chips), raw_heads=raw_heads,
            ))

        faces, sitter = self._track(faces, (rgb.shape[1], rgb.shape[0]))
        lap("track")
        timings["invoke"] = invoke_ms
        timings["total"] = (time.perf_counter() - start) * 1000
        return FrameResult(frame_size=(rgb.shape[1], rgb.shape[0]), faces=faces, sitter=sitter, timings_ms=timings)

    def _track(self, faces: list[FaceResult], frame_size: tuple[int, int]) -> tuple[list[FaceResult], FaceResult | None]:
        detections = [f.detection for f in faces]
        ids = self.tracker.update(detections)
        tracked = []
        for face, track_id in zip(faces, ids, strict=True):
            heads = {name: self._smoothed(track_id, result) for name, result in face.raw_heads.items()}
            tracked.append(FaceResult(
                detection=face.detection, track_id=track_id, heads=heads, chips=face.chips,
                sharpness=face.sharpness, raw_heads=face.raw_heads,
            ))
        sitter_index = self.tracker.choose_sitter(detections, ids, frame_size)
        sitter = tracked[sitter_index] if sitter_index is not None else None
        return tracked, sitter

    def _smoothed(self, track_id: int, result: HeadResult) -> HeadResult:
        probabilities = self.tracker.smooth(track_id, result.name, result.probabilities)
        return self.heads[result.name].result(probabilities)


def _sharpness(chips: dict[str, np.ndarray]) -> float:
    """Score how sharp a face is from its largest chip (gray, or made gray)."""
    if not chips:
        return 0.0
    chip = max(chips.values(), key=lambda c: c.shape[0])
    gray = chip if chip.ndim == 2 else chip.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return laplacian_variance(gray)
