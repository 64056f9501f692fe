"""Cut each attribute model's face chip with one similarity transform per face.

The four stable BlazeFace keypoints (both eyes, nose tip, mouth) are fitted by
least squares to a canonical face, giving one frame-to-face similarity per face.
Every chip is placed by that fit, so all heads share it and differ only in how
much of the face their chip shows:

- "dlib": the face chip of dlib's get_face_chip_details, which age and gender were
  trained on, turned upright with the face. The canonical face is dlib's chip at
  padding 0, so padding ``p`` maps a canonical point c to (c + p) / (1 + 2 p).
- "fer": the looser square crop fer 25.10.3 takes around an OpenCV Haar box (the
  box made square plus 10 pixels on each side), resized to 64x64 gray. Like fer's,
  it stays upright in the frame: the fit gives its centre and size, not its roll.

The canonical positions below were measured, not guessed. tools/fidelity.py maps
our keypoints through the reference pipelines' own chip transforms on the real
test media and averages them, and docs/fidelity.md records the numbers and the
agreement they give.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from expression_portrait.models import ChipSpec
from expression_portrait.vision.types import LEFT_EYE, MOUTH, NOSE_TIP, RIGHT_EYE, Detection

FIT_KEYPOINTS = (LEFT_EYE, RIGHT_EYE, NOSE_TIP, MOUTH)

# Canonical positions of FIT_KEYPOINTS in dlib's face chip at padding 0, as fractions
# of the chip's side (x right, y down).
# Measured on 87 faces of the test media, with x made symmetric about 0.5.
CANONICAL_FACE = np.array([
    [0.2325, 0.2138],  # left eye (image left)
    [0.7675, 0.2138],  # right eye
    [0.5000, 0.5208],  # nose tip
    [0.5000, 0.7953],  # mouth
], dtype=np.float64)

# The fer crop in canonical face units: its side and its top-left corner. On 82 faces the
# crop's centre measured (0.508, 0.344), centred here in x, and its side 1.56; a side of
# 1.60 agreed as often with fer's top emotion and came closer to fer's probabilities.
FER_CROP_SIDE = 1.60
FER_CROP_ORIGIN = np.array([0.5, 0.3444]) - FER_CROP_SIDE / 2

# fer crops an upright square around the Haar box, so its chip keeps the frame's
# vertical: the face's scale and position come from the fitted transform, its roll
# does not. Turning the crop with the face agreed less often with fer's top emotion.
FER_UPRIGHT = True

# Chips whose source region is this many frame pixels per chip pixel or more are
# supersampled (k x k bilinear samples averaged per chip pixel) against aliasing,
# as dlib's extract_image_chip low-pass filters through an image pyramid.
SUPERSAMPLE_FROM = 2.0
MAX_SUPERSAMPLE = 2



def fit_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Return the 2x3 similarity (rotation, uniform scale, shift) that best maps source onto target.

    Least squares over the point pairs, without reflection (Umeyama's method in 2-D).
    """
    source_mean = source.mean(axis=0)
    target_mean = target.mean(axis=0)
    s = source - source_mean
    t = target - target_mean
    norm = float((s * s).sum())
    if norm <= 1e-12:
        raise ValueError("the keypoints coincide, so no face transform can be fitted")
    a = float((s * t).sum()) / norm
    b = float((s[:, 0] * t[:, 1] - s[:, 1] * t[:, 0]).sum()) / norm
    linear = np.array([[a, -b], [b, a]])
    shift = target_mean - linear @ source_mean
    return np.hstack([linear, shift[:, None]])


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    linear = np.linalg.inv(matrix[:, :2])
    return np.hstack([linear, -(linear @ matrix[:, 2])[:, None]])


def chip_from_face(spec: ChipSpec) -> np.ndarray:
    """Return the 2x3 affine map from canonical face units to chip pixels for ``spec``."""
    if spec.style == "dlib":
        scale = spec.size / (1 + 2 * spec.padding)
        offset = np.array([spec.padding, spec.padding]) * scale
    else:
        scale = spec.size / FER_CROP_SIDE
        offset = -FER_CROP_ORIGIN * scale
    return np.array([[scale, 0.0, offset[0]], [0.0, scale, offset[1]]])


@dataclass(frozen=True, eq=False)
class FaceChips:
    """The chips of one face, keyed by chip spec."""

    face_transform: np.ndarray  # 2x3, frame pixels -> canonical face units
    chips: dict[tuple[ChipSpec, str], np.ndarray]  # uint8: (size, size) gray or (size, size, 3) RGB
    # Gray chips use Pillow's ITU-R BT.601 luma, the same weights as OpenCV's BGR2GRAY.


class FaceAligner:
    """Cuts the chips that a set of heads needs from a frame.

    Each chip is keyed by (spec, colour), where the colour is "gray" or "rgb". A head
    that wants BGR reorders the RGB chip's channels when it normalises it.
    """

    def __init__(self, keys: list[tuple[ChipSpec, str]]):
        # Largest first, so a smaller chip of the same region can be averaged down from it.
        self.keys = sorted(dict.fromkeys(keys), key=lambda key: -key[0].size)
        self._chip_maps = {spec: chip_from_face(spec) for spec, _ in self.keys}

    @staticmethod
    def prepare(rgb: np.ndarray) -> Image.Image:
        """Wrap an RGB frame for cutting; do it once per frame, as it copies the pixels."""
        return Image.fromarray(rgb, "RGB")

    @staticmethod
    def face_transform(detection: Detection) -> np.ndarray:
        """Fit the frame-to-canonical-face similarity of one detection."""
        points = np.asarray(detection.keypoints, np.float64)[list(FIT_KEYPOINTS)]
        return fit_similarity(points, CANONICAL_FACE)

    def cut(self, frame: np.ndarray | Image.Image, detection: Detection) -> FaceChips:
        """Cut every chip for one face from an RGB uint8 frame (or its prepare() image)."""
        image = frame if isinstance(frame, Image.Image) else self.prepare(frame)
        face = self.face_transform(detection)
        chips = {}
        sampled: dict[tuple[str, float], Image.Image] = {}  # (style, padding) -> RGB chip
        for spec, color in self.keys:
            region = (spec.style, spec.padding)
            larger = sampled.get(region)
            if larger is not None and larger.width % spec.size == 0:
                # The same region at a multiple of this size: average blocks instead of sampling.
                chip = larger.reduce(larger.width // spec.size)
            else:
                chip = sample_chip(image, self._chip_to_frame(face, spec), spec.size)
                sampled[region] = chip
            chips[(spec, color)] = np.asarray(chip.convert("L") if color == "gray" else chip)
        return FaceChips(face, chips)


    def _chip_to_frame(self, face: np.ndarray, spec: ChipSpec) -> np.ndarray:
        """Return the 2x3 map from chip to frame coordinates for one face and chip spec."""
        if spec.style == "fer" and FER_UPRIGHT:
            # The same centre and scale as the aligned crop, without the roll.
            face_to_frame = invert_affine(face)
            centre = face_to_frame[:, :2] @ (FER_CROP_ORIGIN + FER_CROP_SIDE / 2) + face_to_frame[:, 2]
            step = FER_CROP_SIDE / float(np.sqrt(abs(np.linalg.det(face[:, :2])))) / spec.size
            half = step * spec.size / 2
            return np.array([[step, 0.0, centre[0] - half], [0.0, step, centre[1] - half]])
        # Compose frame -> face -> chip, then invert to sample each chip pixel's frame point.
        return invert_affine(self._chip_maps[spec] @ np.vstack([face, [0, 0, 1]]))


def sample_chip(image: Image.Image, chip_to_frame: np.ndarray, size: int) -> Image.Image:
    """Sample a size x size RGB chip bilinearly, supersampled when it shrinks the face a lot.

    Pillow's affine transform maps the continuous chip coordinate of each pixel centre
    (x + 0.5, y + 0.5) through ``chip_to_frame`` to a continuous frame coordinate, and
    fills outside the frame with black.
    """
    frame_pixels_per_chip_pixel = float(np.sqrt(abs(np.linalg.det(chip_to_frame[:, :2]))))
    factor = 1
    if frame_pixels_per_chip_pixel >= SUPERSAMPLE_FROM:
        factor = min(MAX_SUPERSAMPLE, int(frame_pixels_per_chip_pixel / SUPERSAMPLE_FROM) + 1)

    # Sample a factor-times finer grid over the same chip, then average factor x factor blocks.
    fine = chip_to_frame.copy()
    fine[:, :2] /= factor
    coefficients = tuple(float(v) for v in fine.reshape(-1))
    chip = image.transform((size * factor, size * factor), Image.AFFINE, coefficients, resample=Image.BILINEAR)
    return chip.reduce(factor) if factor > 1 else chip


def laplacian_variance(gray: np.ndarray) -> float:
    """Return the variance of the 4-neighbour Laplacian of a 2-D image: a sharpness score."""
    g = gray.astype(np.float32)
    laplacian = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(laplacian.var())
