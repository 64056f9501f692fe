"""Decode image and video files into RGB uint8 arrays (Pillow and PyAV)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from expression_portrait.errors import DecodeError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"}


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as an (H, W, 3) RGB uint8 array.

    EXIF orientation is applied, so a phone photo stands the way it was taken.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError as exc:
        raise DecodeError(f"{path}: file not found") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DecodeError(f"{path}: not a readable image ({exc})") from exc


def iter_video_frames(path: str | Path, *, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Yield the frames of a video file as (H, W, 3) RGB uint8 arrays.

    Raises DecodeError naming the file when it cannot be opened or has no video
    stream; a stream that breaks off part way raises DecodeError too, after the
    frames decoded before the damage.
    """
    import av

    path = Path(path)
    if not path.exists():
        raise DecodeError(f"{path}: file not found")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise DecodeError(f"{path}: not a readable video ({exc})") from exc
    with container:
        if not container.streams.video:
            raise DecodeError(f"{path}: contains no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        count = 0
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
                count += 1
                if max_frames is not None and count >= max_frames:
                    return
        except (av.FFmpegError, OSError) as exc:
            raise DecodeError(f"{path}: video is damaged after frame {count} ({exc})") from exc
    if count == 0:
        raise DecodeError(f"{path}: video stream has no decodable frames")


def load_frames(path: str | Path, *, max_frames: int | None = None) -> list[np.ndarray]:
    """Return every frame of an image (one) or video file as RGB arrays."""
    if is_video(path):
        return list(iter_video_frames(path, max_frames=max_frames))
    return [load_image(path)]
