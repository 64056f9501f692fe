"""Decoding of image and video files, including damaged ones."""

import pytest

from expression_portrait import decode, media
from expression_portrait.errors import DecodeError


def test_truncated_jpeg_names_file(tmp_path):
    data = media.path("single_face.jpg").read_bytes()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(data[:200])

    with pytest.raises(DecodeError, match="broken.jpg"):
        decode.load_image(broken)


def test_text_file_is_not_an_image(tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("hello")

    with pytest.raises(DecodeError, match="notes.png: not a readable image"):
        decode.load_image(fake)


def test_missing_image_names_file(tmp_path):
    with pytest.raises(DecodeError, match="nothing.jpg: file not found"):
        decode.load_image(tmp_path / "nothing.jpg")


def test_truncated_video_names_file(tmp_path):
    data = media.path("single_face.mp4").read_bytes()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(data[: len(data) // 3])

    with pytest.raises(DecodeError, match="broken.mp4"):
        list(decode.iter_video_frames(broken))


def test_garbage_video_names_file(tmp_path):
    fake = tmp_path / "fake.mov"
    fake.write_bytes(b"\x00" * 4096)

    with pytest.raises(DecodeError, match="fake.mov"):
        list(decode.iter_video_frames(fake))


def test_video_frames_are_rgb():
    frames = decode.load_frames(media.path("no_face.mp4"), max_frames=3)

    assert len(frames) == 3
    assert all(f.dtype.name == "uint8" and f.shape[2] == 3 for f in frames)
