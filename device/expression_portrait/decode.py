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

    EXIF orientation is applied, so a phone photo is upright as it was taken.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in WIDE_GRAY_MODES:
                return _wide_gray_to_rgb(np.asarray(image), image.mode)
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError as exc:
        raise DecodeError(f"{path}: file not found") from exc
    except Image.DecompressionBombError as exc:
        raise DecodeError(
            f"{path}: image too large to decode safely ({exc}); scale it down below "
            f"{Image.MAX_IMAGE_PIXELS} pixels first"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DecodeError(f"{path}: not a readable image ({exc})") from exc


# Pillow modes of one channel wider than 8 bits: 16-bit PNG and TIFF ("I;16...",
# or "I" in older Pillow releases), 32-bit integer ("I") and float ("F") TIFF.
# Pillow's own convert("RGB") clips these at 255, which turns a 16-bit photo white.
WIDE_GRAY_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


def _wide_gray_to_rgb(values: np.ndarray, mode: str) -> np.ndarray:
    """Scale one wide gray channel to 0..255 and repeat it into RGB.

    Integers are read as 16-bit (0..65535). Floats are read as 0..1 when every
    finite value lies in that range, else as 0..255; NaN becomes black.
    """
    if mode == "F":
        values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        if values.size and values.min() >= 0 and values.max() <= 1:
            values = values * 255
        gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    else:
        values = np.clip(values.astype(np.int64), 0, 65535)
        gray = ((values * 255 + 32767) // 65535).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


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
