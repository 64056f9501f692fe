"""Face alignment: the similarity fit, chip geometry and sizes, rotation and sharpness."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from expression_portrait.models import ChipSpec
from expression_portrait.vision.align import (
    CANONICAL_FACE,
    FIT_KEYPOINTS,
    FaceAligner,
    chip_from_face,
    fit_similarity,
    laplacian_variance,
)
from vision_helpers import detector, image

DLIB_64 = ChipSpec("dlib", 64, 0.2)
DLIB_32 = ChipSpec("dlib", 32, 0.2)
FER_64 = ChipSpec("fer", 64, 0.0)
KIOSK_CHIPS = [(FER_64, "gray"), (DLIB_64, "rgb"), (DLIB_32, "rgb")]


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_fit_similarity_recovers_known_transform():
    angle = np.deg2rad(25)
    known = np.array([[2 * np.cos(angle), -2 * np.sin(angle), 30], [2 * np.sin(angle), 2 * np.cos(angle), -7]])
    source = np.array([[0, 0], [10, 0], [3, 8], [5, 14]], float)

    fitted = fit_similarity(source, apply(known, source))

    np.testing.assert_allclose(fitted, known, atol=1e-9)


def test_fit_similarity_rejects_coinciding_points():
    with pytest.raises(ValueError, match="coincide"):
        fit_similarity(np.ones((4, 2)), CANONICAL_FACE)


def test_chips_have_model_sizes():
    photo = image("astronaut.png")
    face = detector().detect(photo)[0]

    chips = FaceAligner(KIOSK_CHIPS).cut(photo, face).chips

    assert chips[(FER_64, "gray")].shape == (64, 64)
    assert chips[(DLIB_64, "rgb")].shape == (64, 64, 3)
    assert chips[(DLIB_32, "rgb")].shape == (32, 32, 3)
    assert all(chip.dtype == np.uint8 for chip in chips.values())


def test_dlib_chip_puts_eyes_at_canonical_places():
    photo = image("single_face.jpg")
    face = detector().detect(photo)[0]

    transform = FaceAligner.face_transform(face)
    chip_points = apply(chip_from_face(DLIB_64) @ np.vstack([transform, [0, 0, 1]]),
                        face.keypoints[list(FIT_KEYPOINTS)].astype(float))

    # With 0.2 padding the canonical unit square spans 64 / 1.4 pixels from 64 * 0.2 / 1.4.
    expected = (CANONICAL_FACE + 0.2) / 1.4 * 64
    np.testing.assert_allclose(chip_points, expected, atol=3.0)
    assert chip_points[0, 0] < 32 < chip_points[1, 0]


def test_smaller_chip_of_same_region_is_averaged_down():
    photo = image("astronaut.png")
    face = detector().detect(photo)[0]

    chips = FaceAligner(KIOSK_CHIPS).cut(photo, face).chips
    large = chips[(DLIB_64, "rgb")].astype(float)
    small = chips[(DLIB_32, "rgb")].astype(float)

    blocks = large.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))
    assert np.abs(blocks - small).max() <= 1.0  # only rounding differs


def test_alignment_undoes_rotation():
    photo = image("astronaut.png")
    upright = detector().detect(photo)[0]
    turned = np.asarray(Image.fromarray(photo).rotate(25, resample=Image.BILINEAR))
    rotated = detector().detect(turned)
    assert len(rotated) == 1

    aligner = FaceAligner([(DLIB_64, "rgb")])
    chip = aligner.cut(photo, upright).chips[(DLIB_64, "rgb")].astype(float)
    chip_turned = aligner.cut(turned, rotated[0]).chips[(DLIB_64, "rgb")].astype(float)
    # What a crop that kept the turn would look like: the upright chip turned by 25 degrees.
    chip_kept_turn = np.asarray(Image.fromarray(chip.astype(np.uint8)).rotate(25, resample=Image.BILINEAR))

    # Keypoints move by a pixel or two between the photos, so compare 8x8-pixel block means.
    def coarse(chip_pixels):
        return np.asarray(chip_pixels, float).reshape(8, 8, 8, 8, 3).mean(axis=(1, 3))

    difference = np.abs(coarse(chip) - coarse(chip_turned)).mean()
    assert difference < 20  # a shift of 2 chip pixels alone gives 11
    assert difference < np.abs(coarse(chip) - coarse(chip_kept_turn)).mean() / 2


def test_face_near_border_gets_black_fill():
    photo = image("single_face.jpg")
    face = detector().detect(photo)[0]
    left = int(face.box[0]) + 20
    cut = np.ascontiguousarray(photo[:, left:])
    shifted = type(face)(box=face.box - [left, 0, left, 0], keypoints=face.keypoints - [left, 0], score=face.score)

    chip = FaceAligner([(DLIB_64, "rgb")]).cut(cut, shifted).chips[(DLIB_64, "rgb")]

    assert chip[:, :4].max() == 0  # outside the frame reads as black
    assert chip[:, 32:].mean() > 40


def test_sharpness_drops_with_blur():
    photo = image("single_face.jpg")
    gray = photo.mean(axis=2)
    blurred = (gray[:-2, :-2] + gray[1:-1, 1:-1] + gray[2:, 2:] + gray[:-2, 2:] + gray[2:, :-2]) / 5

    assert laplacian_variance(blurred) < laplacian_variance(gray) / 2
