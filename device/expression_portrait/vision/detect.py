"""BlazeFace face detection decoded as MediaPipe does it.

The frame is letterboxed (scaled to fit, centred, padded with black) into the
detector's square input, so any aspect ratio works. The raw outputs are decoded
against SSD anchors into boxes and six keypoints, scores pass through a clipped
sigmoid, and overlapping boxes are merged by weighted non-maximum suppression.
The sources are MediaPipe's face_detection_short_range_common.pbtxt,
ssd_anchors_calculator.cc, tensors_to_detections_calculator.cc and
non_max_suppression_calculator.cc (WeightedNonMaxSuppression).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from expression_portrait.errors import ModelError
from expression_portrait.models import ModelEntry, verify_file
from expression_portrait.runtime import load_interpreter
from expression_portrait.vision.types import Detection


def _layer_scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    if count == 1:
        return (min_scale + max_scale) / 2
    return min_scale + (max_scale - min_scale) * index / (count - 1)


def generate_anchors(options: Mapping[str, Any], input_size: tuple[int, int]) -> np.ndarray:
    """Return SSD anchors as an (N, 4) float32 array of x centre, y centre, width, height.

    Follows MediaPipe's SsdAnchorsCalculator: layers with the same stride share one
    feature map, each contributes one anchor per aspect ratio plus, if
    interpolated_scale_aspect_ratio > 0, one anchor at the geometric mean of this
    and the next layer's scale. ``input_size`` is (width, height) of the model input.
    """
    key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))
    return _anchors_cached(key, input_size).copy()


@functools.lru_cache(maxsize=8)
def _anchors_cached(key: tuple, input_size: tuple[int, int]) -> np.ndarray:
    options = dict(key)
    strides = list(options["strides"])
    count = options["num_layers"]
    width, height = input_size
    blocks = []
    layer = 0
    while layer < count:
        # Gather the anchor shapes of every layer that shares this stride.
        shapes = []  # (width, height) of each anchor per cell
        last = layer
        while last < count and strides[last] == strides[layer]:
            scale = _layer_scale(options["min_scale"], options["max_scale"], last, count)
            if last == 0 and options["reduce_boxes_in_lowest_layer"]:
                ratios_scales = [(1.0, 0.1), (2.0, scale), (0.5, scale)]
            else:
                ratios_scales = [(ratio, scale) for ratio in options["aspect_ratios"]]
                interpolated = options["interpolated_scale_aspect_ratio"]
                if interpolated > 0:
                    next_scale = 1.0 if last == count - 1 else _layer_scale(
                        options["min_scale"], options["max_scale"], last + 1, count)
                    ratios_scales.append((interpolated, math.sqrt(scale * next_scale)))
            for ratio, anchor_scale in ratios_scales:
                root = math.sqrt(ratio)
                shapes.append((anchor_scale * root, anchor_scale / root))
            last += 1

        # One anchor per shape at every cell centre, cells in row-major order.
        stride = strides[layer]
        cols = math.ceil(width / stride)
        rows = math.ceil(height / stride)
        xs = (np.arange(cols) + options["anchor_offset_x"]) / cols
        ys = (np.arange(rows) + options["anchor_offset_y"]) / rows
        grid_x, grid_y = np.meshgrid(xs, ys)
        sizes = np.ones((len(shapes), 2)) if options["fixed_anchor_size"] else np.array(shapes)
        block = np.empty((rows, cols, len(shapes), 4))
        block[..., 0] = grid_x[:, :, None]
        block[..., 1] = grid_y[:, :, None]
        block[..., 2:] = sizes
        blocks.append(block.reshape(-1, 4))
        layer = last
    return np.concatenate(blocks).astype(np.float32)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray,
                 iou_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge overlapping detections as MediaPipe's WeightedNonMaxSuppression does.

    The best remaining detection and every detection overlapping it by more than
    ``iou_threshold`` form a cluster. The cluster becomes one detection with the
    best score and the score-weighted mean of the boxes and keypoints.
    """
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    out_boxes, out_keypoints, out_scores = [], [], []
    while order.size:
        top = order[0]
        rest = boxes[order]
        inter_w = np.clip(np.minimum(rest[:, 2], boxes[top, 2]) - np.maximum(rest[:, 0], boxes[top, 0]), 0, None)
        inter_h = np.clip(np.minimum(rest[:, 3], boxes[top, 3]) - np.maximum(rest[:, 1], boxes[top, 1]), 0, None)
        intersection = inter_w * inter_h
        union = areas[order] + areas[top] - intersection
        iou = np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)
        in_cluster = iou > iou_threshold
        in_cluster[0] = True  # a degenerate top box still forms its own cluster
        cluster = order[in_cluster]

        weights = scores[cluster]
        total = weights.sum()
        out_boxes.append((boxes[cluster] * weights[:, None]).sum(axis=0) / total)
        out_keypoints.append((keypoints[cluster] * weights[:, None, None]).sum(axis=0) / total)
        out_scores.append(scores[top])
        order = order[~in_cluster]
    if not out_scores:
        return np.zeros((0, 4), np.float32), np.zeros((0, keypoints.shape[1], 2), np.float32), np.zeros(0, np.float32)
    return (np.array(out_boxes, np.float32), np.array(out_keypoints, np.float32),
            np.array(out_scores, np.float32))


@dataclass(frozen=True, eq=False)
class Letterbox:
    """Placement of a frame inside the square detector input."""

    frame_size: tuple[int, int]  # (width, height) of the frame
    content_size: tuple[int, int]  # (width, height) of the scaled frame inside the input
    offset: tuple[int, int]  # (left, top) padding in input pixels

    def to_frame(self, points: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
        """Map (..., 2) points normalised to the detector input back to frame pixels."""
        in_w, in_h = input_size
        scale = np.array([self.frame_size[0] / self.content_size[0],
                          self.frame_size[1] / self.content_size[1]], np.float32)
        offset = np.array(self.offset, np.float32)
        return (points * np.array([in_w, in_h], np.float32) - offset) * scale


@functools.lru_cache(maxsize=8)
def _letterbox(frame_size: tuple[int, int], input_size: tuple[int, int]) -> Letterbox:
    width, height = frame_size
    in_w, in_h = input_size
    scale = min(in_w / width, in_h / height)
    content_w = min(in_w, max(1, round(width * scale)))
    content_h = min(in_h, max(1, round(height * scale)))
    left = (in_w - content_w) // 2
    top = (in_h - content_h) // 2
    return Letterbox(frame_size, (content_w, content_h), (left, top))


class FaceDetector:
    """A BlazeFace model from the manifest, ready to find faces in RGB frames."""

    def __init__(self, entry: ModelEntry, *, num_threads: int = 1, min_score: float | None = None,
                 nms_iou: float | None = None, min_face_size: float = 0.0, verify: bool = True):
        if not entry.is_detector:
            raise ModelError(f"model {entry.name!r} has task {entry.task!r}, not face_detection")
        if verify:
            verify_file(entry)
        self.entry = entry
        self.min_score = entry.min_score if min_score is None else min_score
        self.nms_iou = entry.nms_iou if nms_iou is None else nms_iou
        self.min_face_size = min_face_size
        self.last_invoke_ms = 0.0

        self._interpreter = load_interpreter(entry.path, num_threads=num_threads)
        self.input_size = (entry.input.width, entry.input.height)
        self._input_index, self._input = self._check_input()
        self._last_letterbox: Letterbox | None = None
        self._boxes_index, self._scores_index, num_anchors = self._find_outputs()

        self.anchors = generate_anchors(entry.ssd, self.input_size)
        if len(self.anchors) != num_anchors:
            raise ModelError(
                f"model {entry.name!r}: the ssd options give {len(self.anchors)} anchors but the "
                f"model outputs {num_anchors} boxes; fix outputs.ssd in the manifest"
            )
        self._logit_limit = float(entry.ssd["score_clipping_thresh"])
        # The sigmoid is monotonic, so the score threshold can be applied to raw logits.
        clipped = min(max(self.min_score, 1e-7), 1 - 1e-7)
        self._min_logit = math.log(clipped / (1 - clipped))
        self._coord_scale = np.array([entry.ssd["x_scale"], entry.ssd["y_scale"]], np.float32)
        self._size_scale = np.array([entry.ssd["w_scale"], entry.ssd["h_scale"]], np.float32)
        self._num_keypoints = int(entry.ssd["num_keypoints"])

    def _check_input(self) -> tuple[int, np.ndarray]:
        details = self._interpreter.get_input_details()[0]
        expected = tuple(self.entry.input.shape)
        if tuple(details["shape"]) != expected or details["dtype"] != np.float32:
            raise ModelError(
                f"model {self.entry.name!r}: the file's input is {tuple(details['shape'])} "
                f"{np.dtype(details['dtype']).name}, but the manifest says {expected} float32"
            )
        return details["index"], np.empty(expected, np.float32)

    def _find_outputs(self) -> tuple[int, int, int]:
        # Pick outputs by shape, not by position: the two detector files order them differently.
        outputs = self._interpreter.get_output_details()
        coords = 4 + 2 * int(self.entry.ssd["num_keypoints"])
        boxes = [d for d in outputs if len(d["shape"]) == 3 and d["shape"][2] == coords]
        scores = [d for d in outputs if len(d["shape"]) == 3 and d["shape"][2] == 1]
        if len(boxes) != 1 or len(scores) != 1 or boxes[0]["shape"][1] != scores[0]["shape"][1]:
            shapes = [tuple(d["shape"]) for d in outputs]
            raise ModelError(
                f"model {self.entry.name!r}: expected outputs (1, N, {coords}) and (1, N, 1), got {shapes}"
            )
        return boxes[0]["index"], scores[0]["index"], int(boxes[0]["shape"][1])

    def detect(self, rgb: np.ndarray, image: Image.Image | None = None) -> list[Detection]:
        """Find faces in a C-contiguous (H, W, 3) RGB uint8 frame, largest first.

        ``image`` is the same frame as a Pillow image, if the caller has made one already.
        """
        letterbox = self._prepare(rgb, image)

        start = time.perf_counter()
        self._interpreter.set_tensor(self._input_index, self._input)
        self._interpreter.invoke()
        raw_boxes = self._interpreter.get_tensor(self._boxes_index)[0]
        logits = self._interpreter.get_tensor(self._scores_index)[0, :, 0]
        self.last_invoke_ms = (time.perf_counter() - start) * 1000

        return self._decode(raw_boxes, logits, letterbox)

    def _prepare(self, rgb: np.ndarray, image: Image.Image | None = None) -> Letterbox:
        height, width = rgb.shape[:2]
        letterbox = _letterbox((width, height), self.input_size)
        if letterbox is not self._last_letterbox:
            # A new frame size moves the content, so repaint the padding: black, normalised.
            mean = np.array(self.entry.input.mean, np.float32)
            self._input[...] = (0 - mean) * np.float32(self.entry.input.scale)
            self._last_letterbox = letterbox
        content_w, content_h = letterbox.content_size
        left, top = letterbox.offset
        # Shrinking averages each input pixel's whole area of the frame (a box filter), so
        # small faces survive aliasing: it found the sixth face of t1.jpg (score 0.54), which
        # MediaPipe's plain bilinear sampling scored below 0.5. Enlarging is bilinear.
        if image is None:
            image = Image.fromarray(rgb, "RGB")
        resample = Image.BOX if content_w <= width else Image.BILINEAR
        pixels = np.asarray(image.resize((content_w, content_h), resample), dtype=np.float32)
        mean = np.array(self.entry.input.mean, np.float32)
        region = self._input[0, top:top + content_h, left:left + content_w]
        np.subtract(pixels, mean, out=region)
        region *= np.float32(self.entry.input.scale)
        return letterbox

    def _decode(self, raw_boxes: np.ndarray, logits: np.ndarray, letterbox: Letterbox) -> list[Detection]:
        keep = np.flatnonzero(logits >= self._min_logit)
        if keep.size == 0:
            return []
        anchors = self.anchors[keep]
        raw = raw_boxes[keep]
        centre = raw[:, 0:2] / self._coord_scale * anchors[:, 2:4] + anchors[:, 0:2]
        half = raw[:, 2:4] / self._size_scale * anchors[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        points = raw[:, 4:4 + 2 * self._num_keypoints].reshape(-1, self._num_keypoints, 2)
        points = points / self._coord_scale * anchors[:, None, 2:4] + anchors[:, None, 0:2]
        clipped = np.clip(logits[keep], -self._logit_limit, self._logit_limit)
        scores = 1.0 / (1.0 + np.exp(-clipped))

        # Drop boxes with a negative or NaN size, as MediaPipe does.
        valid = np.all(half > 0, axis=1)
        boxes, points, scores = weighted_nms(boxes[valid], points[valid], scores[valid], self.nms_iou)

        corners = letterbox.to_frame(boxes.reshape(-1, 2, 2), self.input_size).reshape(-1, 4)
        points = letterbox.to_frame(points, self.input_size)
        widths = corners[:, 2] - corners[:, 0]
        order = np.argsort(-(widths * (corners[:, 3] - corners[:, 1])), kind="stable")
        return [
            Detection(box=corners[i], keypoints=points[i], score=float(scores[i]))
            for i in order
            if widths[i] >= self.min_face_size
        ]
