"""Frames in every layout a camera or decoder may hand over, and the ones the pipeline rejects."""

from __future__ import annotations

import numpy as np
import pytest

from expression_portrait.errors import FrameError
from expression_portrait.vision.frames import to_rgb
from vision_helpers import image, pipeline


@pytest.fixture(scope="module")
def analysis():
    return pipeline(heads=["emotion"])


def sitter_box(result):
    assert result.sitter is not None
    return result.sitter.detection.box


def test_rgb_frame_passes_without_copy():
    photo = np.ascontiguousarray(image("astronaut.png"))

    assert to_rgb(photo) is photo


def test_bgr_frame_matches_rgb(analysis):
    photo = image("astronaut.png")
    expected = analysis.analyze(photo)

    result = analysis.analyze(photo[:, :, ::-1], color="bgr")

    np.testing.assert_allclose(sitter_box(result), sitter_box(expected), atol=1e-3)
    np.testing.assert_array_equal(result.sitter.chips["emotion"], expected.sitter.chips["emotion"])


def test_bgr_frame_read_as_rgb_differs():
    photo = image("astronaut.png")

    swapped = to_rgb(photo[:, :, ::-1])

    assert not np.array_equal(swapped, photo)
    np.testing.assert_array_equal(swapped[:, :, ::-1], photo)


@pytest.mark.parametrize("color", ["rgb", "bgr"])
def test_four_channel_frame_drops_alpha(color):
    photo = image("astronaut.png")
    ordered = photo if color == "rgb" else photo[:, :, ::-1]
    four = np.concatenate([ordered, np.full(photo.shape[:2] + (1,), 255, np.uint8)], axis=2)

    np.testing.assert_array_equal(to_rgb(four, color=color), photo)


@pytest.mark.parametrize("shape", ["2d", "one_channel"])
def test_gray_frame_is_analysed(analysis, shape):
    gray = np.asarray(image("single_face.jpg").mean(axis=2), np.uint8)
    frame = gray if shape == "2d" else gray[:, :, None]

    result = analysis.analyze(frame)

    assert len(result.faces) == 1
    assert result.sitter.chips["emotion"].shape == (64, 64)


def test_read_only_frame_is_analysed(analysis):
    frame = np.array(image("single_face.jpg"))
    frame.flags.writeable = False

    result = analysis.analyze(frame)

    assert len(result.faces) == 1


def test_non_contiguous_frames_are_analysed(analysis):
    photo = image("single_face.jpg")
    expected = sitter_box(analysis.analyze(photo))
    padded = np.zeros((photo.shape[0], photo.shape[1], 4), np.uint8)
    padded[:, :, :3] = photo
    strided_views = [
        padded[:, :, :3],  # stride of four bytes per pixel, as XRGB camera buffers
        np.asfortranarray(photo),
        np.ascontiguousarray(photo.transpose(1, 0, 2)).transpose(1, 0, 2),
    ]

    for view in strided_views:
        assert not view.flags.c_contiguous
        np.testing.assert_allclose(sitter_box(analysis.analyze(view)), expected, atol=1e-3)


def test_one_pixel_frame_gives_no_face(analysis):
    result = analysis.analyze(np.zeros((1, 1, 3), np.uint8))

    assert result.faces == []
    assert result.sitter is None
    assert result.frame_size == (1, 1)


def test_large_frame_is_analysed(analysis):
    frame = np.zeros((3000, 4000, 3), np.uint8)
    photo = image("single_face.jpg")
    big = np.repeat(np.repeat(photo, 4, axis=0), 4, axis=1)  # a face of about 800 pixels
    frame[500:500 + big.shape[0], 1000:1000 + big.shape[1]] = big

    result = analysis.analyze(frame)

    assert len(result.faces) == 1
    box = sitter_box(result)
    assert 1000 < box[0] < box[2] < 1000 + big.shape[1]


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 10, 3), (10, 0, 3), (0, 0)])
def test_empty_frame_rejected(analysis, shape):
    frame = np.zeros(shape, np.uint8)

    with pytest.raises(FrameError) as caught:
        analysis.analyze(frame)

    assert str(shape) in str(caught.value)
    assert "uint8" in str(caught.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int64, np.bool_])
def test_wrong_dtype_rejected_naming_shape_and_dtype(analysis, dtype):
    frame = np.zeros((48, 64, 3), dtype)

    with pytest.raises(FrameError) as caught:
        analysis.analyze(frame)

    message = str(caught.value)
    assert "(48, 64, 3)" in message
    assert np.dtype(dtype).name in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("shape", [(64,), (48, 64, 2), (48, 64, 5), (1, 48, 64, 3)])
def test_wrong_shape_rejected_naming_shape(analysis, shape):
    with pytest.raises(FrameError) as caught:
        analysis.analyze(np.zeros(shape, np.uint8))

    assert str(shape) in str(caught.value)


def test_non_array_rejected(analysis):
    with pytest.raises(FrameError, match="list"):
        analysis.analyze([[0, 0, 0]])


def test_unknown_color_order_rejected():
    with pytest.raises(ValueError, match="'rgb' or 'bgr'"):
        to_rgb(np.zeros((2, 2, 3), np.uint8), color="yuv")
