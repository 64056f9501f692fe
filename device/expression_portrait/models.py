"""Read and check models_tflite/manifest.json, the only way the device finds its models.

The manifest lists every model with its file, sha256, task, input format and
outputs. ``load_manifest`` validates every field the device uses and rejects
the manifest with a ModelError naming the model and the field. ``verify_file``
rejects a model file whose sha256 differs from the manifest, naming the file
and both hashes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expression_portrait.errors import ModelError

MODELS_ENV = "EXPRESSION_PORTRAIT_MODELS"
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1

TASKS = ("face_detection", "classification", "age")
COLORS = ("gray", "rgb", "bgr")
INPUT_DTYPES = ("float32", "uint8", "int8")
ACTIVATIONS = ("softmax", "none")
CHIP_STYLES = ("fer", "dlib")


def default_models_dir() -> Path:
    """Return $EXPRESSION_PORTRAIT_MODELS if set, else models_tflite/ beside device/."""
    override = os.environ.get(MODELS_ENV)
    if override:
        return Path(override)
    # device/expression_portrait/models.py -> the repository or release root.
    return Path(__file__).resolve().parents[2] / "models_tflite"


@dataclass(frozen=True)
class ChipSpec:
    """Geometry of an attribute head's aligned face chip."""

    style: str  # "dlib" (landmark-aligned face chip) or "fer" (looser grayscale crop)
    size: int  # chip width and height in pixels
    padding: float  # dlib: extra border as a fraction of the face size; "fer" chips ignore it


@dataclass(frozen=True)
class InputSpec:
    """The model's input tensor and how pixels are normalised into it."""

    shape: tuple[int, ...]  # e.g. (1, 64, 64, 1)
    dtype: str
    color: str  # "gray", "rgb" or "bgr"
    mean: tuple[float, ...]  # per channel, in 0..255 pixel units
    scale: float  # model input = (pixel - mean) * scale
    chip: ChipSpec | None  # attribute heads
    letterbox: bool  # detectors: keep the aspect ratio, pad with zeros

    @property
    def height(self) -> int:
        return self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[2]

    @property
    def channels(self) -> int:
        return self.shape[3]


@dataclass(frozen=True)
class ModelEntry:
    """One model of the manifest, validated."""

    name: str
    path: Path
    sha256: str
    task: str
    title: str
    dataset: str
    input: InputSpec
    activation: str  # "softmax" or "none" (the outputs are probabilities already)
    labels: tuple[str, ...] = ()  # classification
    ages: tuple[float, ...] = ()  # age: the age in years of each output bin
    ssd: Mapping[str, Any] = field(default_factory=dict)  # detector anchor and decoding options
    min_score: float = 0.5  # detector
    nms_iou: float = 0.3  # detector
    training_data: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)  # the entry as written, for display

    @property
    def is_detector(self) -> bool:
        return self.task == "face_detection"


@dataclass(frozen=True)
class Manifest:
    """The validated manifest: every model, by name."""

    path: Path
    default_detector: str
    models: dict[str, ModelEntry]

    @property
    def folder(self) -> Path:
        return self.path.parent

    def detector(self, name: str | None = None) -> ModelEntry:
        """Return the detector ``name``, or the default detector."""
        name = name or self.default_detector
        entry = self.models.get(name)
        if entry is None or not entry.is_detector:
            detectors = [m.name for m in self.models.values() if m.is_detector]
            raise ModelError(
                f"{self.path}: no face detector named {name!r}; detectors in the manifest: "
                f"{', '.join(detectors) or 'none'}"
            )
        return entry

    def heads(self) -> list[ModelEntry]:
        """Return every attribute model (classification and age), in manifest order."""
        return [m for m in self.models.values() if not m.is_detector]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(entry: ModelEntry) -> None:
    """Raise ModelError if the model file is missing or its sha256 differs from the manifest."""
    if not entry.path.is_file():
        raise ModelError(f"model {entry.name!r}: file {entry.path} not found; run `make models` or restore the release")
    actual = sha256_of(entry.path)
    if actual != entry.sha256:
        raise ModelError(
            f"model {entry.name!r}: {entry.path} has sha256 {actual}, but the manifest expects "
            f"{entry.sha256}; the file is corrupt or was replaced, so restore it from the release"
        )


def load_manifest(models_dir: str | os.PathLike[str] | None = None, *, verify: bool = True) -> Manifest:
    """Read and validate the manifest in ``models_dir`` (default: default_models_dir()).

    With ``verify`` every model file is checked against its sha256 too.
    """
    folder = Path(models_dir) if models_dir is not None else default_models_dir()
    path = folder / MANIFEST_NAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(
            f"{path} not found; set {MODELS_ENV} to the folder that contains manifest.json"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not a readable JSON file ({exc})") from exc

    manifest = _parse_manifest(path, document)
    if verify:
        for entry in manifest.models.values():
            verify_file(entry)
    return manifest


# --- validation -------------------------------------------------------------------------------


class _Entry:
    """Reads fields of one model entry, raising ModelError naming the model and field."""

    def __init__(self, path: Path, name: str, data: Mapping[str, Any]):
        self.path = path
        self.name = name
        self.data = data

    def fail(self, key: str, problem: str) -> ModelError:
        return ModelError(f"{self.path}: model {self.name!r}: field {key!r} {problem}")

    def get(self, key: str, default: Any = ...) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                if default is ...:
                    raise self.fail(key, "is missing")
                return default
            node = node[part]
        return node

    def text(self, key: str, default: Any = ...) -> str:
        value = self.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def number(self, key: str, default: Any = ..., *, positive: bool = False, low: float | None = None,
               high: float | None = None) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, f"must be a finite number, got {value!r}")
        if positive and value <= 0:
            raise self.fail(key, f"must be greater than 0, got {value!r}")
        if low is not None and value < low or high is not None and value > high:
            raise self.fail(key, f"must be between {low} and {high}, got {value!r}")
        return float(value)

    def integer(self, key: str, default: Any = ..., *, minimum: int = 1) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"must be an integer of at least {minimum}, got {value!r}")
        return value

    def numbers(self, key: str, default: Any = ..., *, lengths: tuple[int, ...] | None = None) -> tuple[float, ...]:
        value = self.get(key, default)
        if (
            not isinstance(value, list)
            or not value
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in value)
        ):
            raise self.fail(key, f"must be a non-empty list of numbers, got {value!r}")
        if lengths is not None and len(value) not in lengths:
            raise self.fail(key, f"must have {' or '.join(map(str, lengths))} values, got {len(value)}")
        return tuple(float(v) for v in value)


def _parse_manifest(path: Path, document: Any) -> Manifest:
    if not isinstance(document, dict):
        raise ModelError(f"{path}: the top level must be a JSON object")
    if document.get("format") != MANIFEST_FORMAT:
        raise ModelError(
            f"{path}: field 'format' must be {MANIFEST_FORMAT}, got {document.get('format')!r}; "
            "this software reads manifest format 1 only"
        )
    models = document.get("models")
    if not isinstance(models, dict) or not models:
        raise ModelError(f"{path}: field 'models' must be a non-empty object of model entries")

    entries = {}
    for name, data in models.items():
        if not isinstance(data, dict):
            raise ModelError(f"{path}: model {name!r} must be a JSON object, got {type(data).__name__}")
        entries[name] = _parse_entry(_Entry(path, name, data))

    default_detector = document.get("default_detector")
    manifest = Manifest(path, default_detector, entries)
    if not isinstance(default_detector, str):
        raise ModelError(f"{path}: field 'default_detector' is missing or not a string")
    manifest.detector()  # raises if the default names no detector
    return manifest


def _parse_entry(entry: _Entry) -> ModelEntry:
    task = entry.choice("task", TASKS)
    file_name = entry.text("file")
    if Path(file_name).is_absolute() or ".." in Path(file_name).parts:
        raise entry.fail("file", f"must be a path inside the manifest's folder, got {file_name!r}")
    sha256 = entry.text("sha256").lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise entry.fail("sha256", f"must be 64 hex digits, got {sha256!r}")

    model_input = _parse_input(entry, task)
    common = dict(
        name=entry.name,
        path=entry.path.parent / file_name,
        sha256=sha256,
        task=task,
        title=entry.text("title"),
        dataset=entry.text("dataset"),
        input=model_input,
        training_data=entry.text("training_data", "") if entry.get("training_data", "") else "",
        raw=entry.data,
    )

    if task == "face_detection":
        return ModelEntry(
            **common,
            activation="none",
            ssd=_parse_ssd(entry, model_input),
            min_score=entry.number("outputs.min_score", 0.5, low=0.0, high=1.0),
            nms_iou=entry.number("outputs.nms_iou", 0.3, low=0.0, high=1.0),
        )

    activation = entry.choice("outputs.activation", ACTIVATIONS)
    if task == "age":
        ages = entry.numbers("outputs.ages")
        if len(ages) < 2 or any(b <= a for a, b in zip(ages, ages[1:], strict=False)):
            raise entry.fail("outputs.ages", "must list at least two ages in increasing order")
        return ModelEntry(**common, activation=activation, ages=ages, labels=tuple(f"{a:g}" for a in ages))

    labels = entry.get("outputs.labels")
    if (
        not isinstance(labels, list)
        or len(labels) < 2
        or not all(isinstance(label, str) and label for label in labels)
        or len(set(labels)) != len(labels)
    ):
        raise entry.fail("outputs.labels", f"must list at least two distinct non-empty strings, got {labels!r}")
    return ModelEntry(**common, activation=activation, labels=tuple(labels))


def _parse_input(entry: _Entry, task: str) -> InputSpec:
    shape = entry.get("input.shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
        or shape[0] != 1
        or shape[3] not in (1, 3)
    ):
        raise entry.fail("input.shape", f"must be [1, height, width, 1 or 3], got {shape!r}")
    color = entry.choice("input.color", COLORS)
    if (color == "gray") != (shape[3] == 1):
        raise entry.fail("input.color", f"{color!r} does not match {shape[3]} input channel(s) in input.shape")
    mean = entry.numbers("input.mean", lengths=(1, shape[3]) if shape[3] == 3 else (1,))
    scale = entry.number("input.scale", positive=True)
    dtype = entry.choice("input.dtype", INPUT_DTYPES)

    chip = None
    letterbox = False
    if task == "face_detection":
        letterbox = entry.get("input.letterbox", True)
        if not isinstance(letterbox, bool):
            raise entry.fail("input.letterbox", f"must be true or false, got {letterbox!r}")
    else:
        style = entry.choice("input.chip.style", CHIP_STYLES)
        size = entry.integer("input.chip.size", minimum=8)
        if size != shape[1] or size != shape[2]:
            raise entry.fail("input.chip.size", f"{size} does not match input.shape {shape!r}")
        padding = entry.number("input.chip.padding", 0.2 if style == "dlib" else 0.0, low=0.0, high=2.0)
        chip = ChipSpec(style, size, padding)
    return InputSpec(tuple(shape), dtype, color, mean, scale, chip, letterbox)


# MediaPipe SsdAnchorsCalculatorOptions defaults, for the options a manifest may leave out.
_SSD_DEFAULTS = {
    "anchor_offset_x": 0.5,
    "anchor_offset_y": 0.5,
    "aspect_ratios": [1.0],
    "fixed_anchor_size": True,
    "interpolated_scale_aspect_ratio": 1.0,
    "reduce_boxes_in_lowest_layer": False,
    "num_keypoints": 6,
    "score_clipping_thresh": 100.0,
}


def _parse_ssd(entry: _Entry, model_input: InputSpec) -> dict[str, Any]:
    options = dict(_SSD_DEFAULTS)
    options["num_layers"] = entry.integer("outputs.ssd.num_layers")
    options["min_scale"] = entry.number("outputs.ssd.min_scale", positive=True)
    options["max_scale"] = entry.number("outputs.ssd.max_scale", positive=True)
    strides = entry.get("outputs.ssd.strides")
    if (
        not isinstance(strides, list)
        or len(strides) != options["num_layers"]
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in strides)
    ):
        raise entry.fail("outputs.ssd.strides", f"must list {options['num_layers']} positive integers (one per layer), got {strides!r}")
    options["strides"] = strides
    for key in ("anchor_offset_x", "anchor_offset_y", "interpolated_scale_aspect_ratio", "score_clipping_thresh"):
        options[key] = entry.number(f"outputs.ssd.{key}", options[key], low=0.0)
    options["aspect_ratios"] = list(entry.numbers("outputs.ssd.aspect_ratios", options["aspect_ratios"]))
    for key in ("fixed_anchor_size", "reduce_boxes_in_lowest_layer"):
        value = entry.get(f"outputs.ssd.{key}", options[key])
        if not isinstance(value, bool):
            raise entry.fail(f"outputs.ssd.{key}", f"must be true or false, got {value!r}")
        options[key] = value
    options["num_keypoints"] = entry.integer("outputs.ssd.num_keypoints", options["num_keypoints"], minimum=0)
    # Box and keypoint offsets are in input pixels unless the manifest sets other scales.
    options["x_scale"] = entry.number("outputs.ssd.x_scale", float(model_input.width), positive=True)
    options["y_scale"] = entry.number("outputs.ssd.y_scale", float(model_input.height), positive=True)
    options["w_scale"] = entry.number("outputs.ssd.w_scale", float(model_input.width), positive=True)
    options["h_scale"] = entry.number("outputs.ssd.h_scale", float(model_input.height), positive=True)
    return options
