"""Turn whatever array a camera or decoder hands over into a (H, W, 3) RGB uint8 frame."""

from __future__ import annotations

import numpy as np

from expression_portrait.errors import FrameError

COLOR_ORDERS = ("rgb", "bgr")


def describe(array: object) -> str:
    """Return 'shape (..) dtype ..' for an error message, or the type for a non-array."""
    if isinstance(array, np.ndarray):
        return f"shape {array.shape} dtype {array.dtype}"
    return f"type {type(array).__name__}"


def to_rgb(frame: object, *, color: str = "rgb") -> np.ndarray:
    """Return ``frame`` as a C-contiguous (H, W, 3) RGB uint8 array.

    Accepts gray (H, W) or (H, W, 1), three channels in ``color`` order, and four
    channels (RGBA or RGBX; BGRA or BGRX when ``color`` is "bgr", as picamera2's
    XRGB8888 is), read-only and non-contiguous arrays. A frame that already is
    contiguous RGB is returned as is, without a copy. Anything else raises
    FrameError naming the shape and dtype.
    """
    if color not in COLOR_ORDERS:
        raise ValueError(f"color must be 'rgb' or 'bgr', got {color!r}")
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"a frame must be a numpy array, got {describe(frame)}")
    if frame.dtype != np.uint8:
        raise FrameError(
            f"a frame must be uint8, got {describe(frame)}; convert first, e.g. "
            "np.clip(frame * 255, 0, 255).astype(np.uint8) for floats in 0..1"
        )
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        if frame.size == 0:
            raise FrameError(f"a frame must not be empty, got {describe(frame)}")
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise FrameError(
            f"a frame must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {describe(frame)}"
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise FrameError(f"a frame must not be empty, got {describe(frame)}")

    if color == "rgb" and frame.shape[2] == 3:
        return np.ascontiguousarray(frame)
    rgb = frame[:, :, 2::-1] if color == "bgr" else frame[:, :, :3]
    return np.ascontiguousarray(rgb)
