"""``expression-portrait analyze PATH... [--json]``: run the face pipeline on images and videos.

Technicians use it to check what the models find in a camera image. For each
file (and each analysed frame of a video) it prints every face with its box,
keypoints and judgments. The JSON output is documented in docs/analyze-json.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from expression_portrait.decode import is_video, iter_video_frames, load_image
from expression_portrait.errors import ConfigError, DecodeError
from expression_portrait.vision.types import KEYPOINT_NAMES, FaceResult, FrameResult, HeadResult

JSON_SCHEMA_VERSION = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image or video files to analyse")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--models", metavar="DIR", help="models folder (default: the installed models_tflite/)")
    parser.add_argument("--detector", help="manifest name of the face detector, e.g. detector_full_range "
                        "for group photos and people standing back (default: the manifest's default)")
    parser.add_argument("--min-score", type=float, metavar="P",
                        help="minimum detector confidence 0..1 (default: the kiosk's setting)")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="analyse every Nth frame of a video (default: 1, every frame)")
    parser.add_argument("--max-frames", type=int, metavar="N", help="stop each video after N decoded frames")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default: 1)")


def run(args: argparse.Namespace) -> int:
    from expression_portrait.vision.pipeline import Pipeline
    from expression_portrait.vision.settings import VisionSettings

    if args.every < 1:
        raise ConfigError(f"--every must be 1 or more, got {args.every}")
    if args.threads < 1:
        raise ConfigError(f"--threads must be 1 or more, got {args.threads}")
    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames must be 1 or more, got {args.max_frames}")
    overrides: dict[str, Any] = {}
    if args.detector:
        overrides["detector"] = args.detector
    if args.min_score is not None:
        overrides["min_score"] = args.min_score
    if args.min_score is not None and not 0 <= args.min_score <= 1:
        raise ConfigError(f"--min-score must be between 0 and 1, got {args.min_score}")
    settings = VisionSettings(**overrides, keep_chips=False)
    pipeline = Pipeline.from_manifest(args.models, settings, num_threads=args.threads)

    files = []
    failures = 0
    for path in map(Path, args.paths):
        pipeline.reset(renumber=True)  # each file's faces are numbered from 1
        try:
            frames = list(_analyse_file(pipeline, path, args))
            files.append({"path": str(path), "kind": "video" if is_video(path) else "image", "frames": frames})
        except DecodeError as exc:
            failures += 1
            files.append({"path": str(path), "error": str(exc)})
            print(f"expression-portrait analyze: error: {exc}", file=sys.stderr)
        if not args.json:
            _print_text(files[-1])

    if args.json:
        document = {
            "schema": JSON_SCHEMA_VERSION,
            "detector": pipeline.detector.entry.name,
            "heads": list(pipeline.heads),
            "files": files,
        }
        json.dump(document, sys.stdout, indent=2)
        print()
    return 1 if failures else 0


def _analyse_file(pipeline, path: Path, args: argparse.Namespace):
    if not is_video(path):
        yield _frame_json(0, pipeline.analyze(load_image(path)))
        return
    for index, frame in enumerate(iter_video_frames(path, max_frames=args.max_frames)):
        if index % args.every == 0:
            yield _frame_json(index, pipeline.analyze(frame))


def _frame_json(index: int, result: FrameResult) -> dict[str, Any]:
    sitter_id = id(result.sitter) if result.sitter is not None else None
    return {
        "index": index,
        "size": list(result.frame_size),
        "faces": [_face_json(face, id(face) == sitter_id) for face in result.faces],
        "timings_ms": {k: round(v, 3) for k, v in result.timings_ms.items()},
    }


def _face_json(face: FaceResult, is_sitter: bool) -> dict[str, Any]:
    detection = face.detection
    return {
        "track_id": face.track_id,
        "sitter": is_sitter,
        "score": round(detection.score, 4),
        "box": [round(float(v), 1) for v in detection.box],
        "keypoints": {name: [round(float(x), 1), round(float(y), 1)]
                      for name, (x, y) in zip(KEYPOINT_NAMES, detection.keypoints, strict=True)},
        "sharpness": round(face.sharpness, 1),
        "heads": {name: _head_json(head) for name, head in face.raw_heads.items()},
    }


def _head_json(head: HeadResult) -> dict[str, Any]:
    label, probability = head.top
    data: dict[str, Any] = {
        "title": head.title,
        "task": head.task,
        "dataset": head.dataset,
        "top": label,
        "probability": round(probability, 4),
    }
    if head.task == "age":
        data["expected"] = round(head.expected, 2)
        data["interval_80"] = [round(head.interval[0], 2), round(head.interval[1], 2)]
    else:
        data["probabilities"] = {lab: round(float(p), 4) for lab, p in zip(head.labels, head.probabilities, strict=True)}
    return data


def _print_text(file: dict[str, Any]) -> None:
    if "error" in file:
        return
    for frame in file["frames"]:
        where = file["path"] if file["kind"] == "image" else f"{file['path']} frame {frame['index']}"
        if not frame["faces"]:
            print(f"{where}: no face")
            continue
        for face in frame["faces"]:
            x0, y0, x1, y1 = face["box"]
            marker = " (sitter)" if face["sitter"] else ""
            judgments = []
            for head in face["heads"].values():
                if head["task"] == "age":
                    low, high = head["interval_80"]
                    judgments.append(f"{head['title'].lower()} {head['expected']:.0f} (80 %: {low:.0f}-{high:.0f})")
                else:
                    judgments.append(f"{head['title'].lower()} {head['top']} {head['probability']:.0%}")
            print(f"{where}: face {face['track_id']}{marker} box {x0:.0f},{y0:.0f}-{x1:.0f},{y1:.0f} "
                  f"score {face['score']:.2f}: {', '.join(judgments)}")
