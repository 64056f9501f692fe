"""A stand-in for picamera2 and libcamera that follows picamera2's documented behaviour.

It is fed with real video frames and produces what picamera2 0.3.x returns:

- ``Picamera2.global_camera_info()`` lists the cameras; an empty list means none.
- ``Picamera2(n)`` with no camera n raises IndexError("list index out of range"),
  because picamera2 indexes ``global_camera_info()``; a camera held by another
  process raises RuntimeError("Camera __init__ sequence did not complete.") whose
  ``__cause__`` is the acquire failure.
- ``create_preview_configuration`` accepts only the stream keys format, size,
  stride and preserve_ar (ValueError otherwise); ``configure`` rejects odd sizes,
  a lores larger than main, and on a VC4 (Pi 4) platform a non-YUV lores
  (RuntimeError("lores stream must be YUV")).
- Arrays: "RGB888" is B, G, R in memory, "BGR888" is R, G, B, "XRGB8888" is
  B, G, R, X and "XBGR8888" is R, G, B, X, each (h, w, channels); "YUV420" is
  (h * 3 / 2, stride) with the stride padded to 64 bytes.
- ``capture_array`` and ``capture_request().make_array`` copy; a request must be
  released, and holding more than ``buffer_count`` starves capture.
- ``Transform(hflip, vflip)`` flips the sensor image.

Faults are set on the ``FakeCameraSystem``: ``cameras = []`` (none), ``busy``,
``stalled`` (capture blocks) and ``fail_capture`` (capture raises).
"""

from __future__ import annotations

import sys
import threading
import time
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

STREAM_KEYS = {"format", "size", "stride", "preserve_ar"}
YUV_FORMATS = {"YUV420", "YVU420", "NV12", "NV21"}
RGB_FORMATS = {"RGB888", "BGR888", "XRGB8888", "XBGR8888"}


class FakeCameraSystem:
    """The fake camera's surroundings: its frames, the attached cameras and injected faults."""

    def __init__(self, frames: list[np.ndarray], *, platform: str = "VC4",
                 cameras: list[dict[str, Any]] | None = None) -> None:
        if not frames:
            raise ValueError("the fake camera needs at least one frame")
        self.frames = frames
        self.platform = platform  # "VC4" (Pi 4, lores must be YUV) or "PISP" (Pi 5)
        self.cameras = cameras if cameras is not None else [
            {"Model": "imx708", "Location": 2, "Rotation": 180, "Id": "/base/soc/i2c0mux/i2c@1/imx708@1a", "Num": 0}]
        self.busy = False
        self.stalled = threading.Event()
        self.fail_capture: str | None = None
        self.opened: list[FakePicamera2] = []
        self.lock = threading.Lock()

    @property
    def open_cameras(self) -> list[FakePicamera2]:
        return [camera for camera in self.opened if not camera.closed]


class Transform:
    def __init__(self, hflip: int = 0, vflip: int = 0, transpose: int = 0) -> None:
        if transpose:
            # The Raspberry Pi pipeline handler rejects every transform involving a transpose.
            raise ValueError("transpose is not supported by the Raspberry Pi pipeline handler")
        self.hflip = int(hflip)
        self.vflip = int(vflip)


def _stride(fmt: str, width: int) -> int:
    bytes_per_pixel = {"RGB888": 3, "BGR888": 3, "XRGB8888": 4, "XBGR8888": 4}.get(fmt, 1)
    return -(-width * bytes_per_pixel // 64) * 64


def _encode(rgb: np.ndarray, fmt: str, stride: int) -> np.ndarray:
    """Lay out an RGB image the way picamera2 returns ``fmt``."""
    if fmt == "BGR888":
        return rgb.copy()
    if fmt == "RGB888":
        return np.ascontiguousarray(rgb[..., ::-1])
    if fmt in ("XRGB8888", "XBGR8888"):
        pad = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
        ordered = rgb[..., ::-1] if fmt == "XRGB8888" else rgb
        return np.concatenate([ordered, pad], axis=2)
    if fmt == "YUV420":
        return _encode_yuv420(rgb, stride)
    raise ValueError(f"fake camera cannot produce {fmt}")


def _encode_yuv420(rgb: np.ndarray, stride: int) -> np.ndarray:
    # Full-range BT.601 (sYCC), chroma averaged over 2x2 blocks.
    height, width = rgb.shape[:2]
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = (b - y) / 1.772 + 128.0
    v = (r - y) / 1.402 + 128.0

    def half(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    out = np.zeros((height * 3 // 2, stride), np.uint8)
    out[:height, :width] = np.clip(y + 0.5, 0, 255)
    # The U and V planes follow the Y plane back to back, each height/2 rows of stride/2 bytes.
    flat = out.reshape(-1)
    offset = height * stride
    for plane in (half(u), half(v)):
        chroma = np.zeros((height // 2, stride // 2), np.uint8)
        chroma[:, :width // 2] = np.clip(plane + 0.5, 0, 255)
        flat[offset:offset + chroma.size] = chroma.reshape(-1)
        offset += chroma.size
    return out


class FakeRequest:
    def __init__(self, camera: FakePicamera2, rgb: np.ndarray) -> None:
        self._camera = camera
        self._rgb = rgb
        self.released = False

    def make_array(self, name: str) -> np.ndarray:
        if self.released:
            raise RuntimeError("request has been released")
        return self._camera._array_for(self._rgb, name)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._camera._held -= 1


class FakePicamera2:
    system: FakeCameraSystem  # bound per module by make_modules()

    @classmethod
    def global_camera_info(cls) -> list[dict[str, Any]]:
        return [dict(c) for c in cls.system.cameras]

    @staticmethod
    def load_tuning_file(tuning_file: str, dir: str | None = None) -> dict[str, Any]:
        if not tuning_file.endswith(".json"):
            raise RuntimeError("Tuning file not found")
        return {"version": 2.0, "target": "bcm2835", "file": tuning_file}

    def __init__(self, camera_num: int = 0, verbose_console: int | None = None,
                 tuning: dict[str, Any] | None = None) -> None:
        system = self.system
        number = self.global_camera_info()[camera_num]["Num"]  # IndexError when absent, as picamera2
        with system.lock:
            taken = system.busy or any(c.number == number for c in system.open_cameras)
            if taken:
                try:
                    raise RuntimeError("Failed to acquire camera: Device or resource busy")
                except RuntimeError as cause:
                    raise RuntimeError("Camera __init__ sequence did not complete.") from cause
            self.number = number
            self.tuning = tuning
            self.closed = False
            self.started = False
            self.config: dict[str, Any] | None = None
            self.controls: dict[str, Any] = {}
            self._held = 0
            self._index = 0
            self._next_due = 0.0
            self.captured = 0
            system.opened.append(self)

    def create_preview_configuration(self, main: dict | None = None, lores: dict | None = None,
                                     raw: dict | None = None, transform: Transform | None = None,
                                     colour_space: Any = None, buffer_count: int = 4,
                                     controls: dict | None = None, display: str | None = "main",
                                     encode: str | None = "main", queue: bool = True) -> dict[str, Any]:
        main_stream = {"format": "XBGR8888", "size": (640, 480), "preserve_ar": True}
        main_stream.update(self._checked_stream(main or {}))
        config: dict[str, Any] = {
            "use_case": "preview", "transform": transform or Transform(), "buffer_count": buffer_count,
            "main": main_stream, "lores": None, "controls": dict(controls or {}),
        }
        if lores is not None:
            config["lores"] = {"format": "YUV420", "size": main_stream["size"], "preserve_ar": False,
                               **self._checked_stream(lores)}
        return config

    @staticmethod
    def _checked_stream(stream: dict) -> dict:
        unknown = set(stream) - STREAM_KEYS
        if unknown:
            raise ValueError(f"Bad key {sorted(unknown)[0]!r}: valid stream configuration keys are {sorted(STREAM_KEYS)}")
        return dict(stream)

    def align_configuration(self, config: dict[str, Any], optimal: bool = True) -> None:
        for name in ("main", "lores"):
            stream = config.get(name)
            if stream is None:
                continue
            width, height = stream["size"]
            align = 64 if stream["format"] in YUV_FORMATS else 16
            stream["size"] = (width - width % align or align, height - height % 2)

    def configure(self, config: dict[str, Any]) -> None:
        if self.closed:
            raise RuntimeError("Camera has been closed")
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        if not isinstance(config["transform"], Transform):
            raise TypeError("Transform has incorrect type")
        main, lores = config["main"], config["lores"]
        for name, stream in (("main", main), ("lores", lores)):
            if stream is None:
                continue
            if stream["format"] not in YUV_FORMATS | RGB_FORMATS:
                raise ValueError(f"Unrecognised {name} format {stream['format']}")
            if stream["size"][0] % 2 or stream["size"][1] % 2:
                raise RuntimeError(f"{name} stream dimensions must be even")
        if lores is not None:
            if lores["size"][0] > main["size"][0] or lores["size"][1] > main["size"][1]:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
            if self.system.platform == "VC4" and lores["format"] not in YUV_FORMATS:
                raise RuntimeError("lores stream must be YUV")
        for stream in (main, lores):
            if stream is not None:
                stream["stride"] = _stride(stream["format"], stream["size"][0])
        self.config = config
        self.controls = dict(config["controls"])

    def stream_configuration(self, name: str = "main") -> dict[str, Any]:
        return dict(self.config[name])

    def start(self) -> None:
        if self.config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True
        self._next_due = time.monotonic()

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.started = False
        self.closed = True

    def _frame_interval(self) -> float:
        limits = self.controls.get("FrameDurationLimits")
        return limits[0] / 1_000_000 if limits else 1 / 30

    def _next_frame(self) -> np.ndarray:
        system = self.system
        if not self.started:
            raise RuntimeError("Camera is not running")
        while system.stalled.is_set():  # libcamera's dequeue timer would eventually complain
            if not self.started:
                raise RuntimeError("Camera stopped while waiting for a frame")
            time.sleep(0.02)
        if system.fail_capture:
            raise RuntimeError(system.fail_capture)
        if self._held >= self.config["buffer_count"]:
            raise RuntimeError("all camera buffers are held by the application; release requests")
        delay = self._next_due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self._next_due = max(self._next_due + self._frame_interval(), time.monotonic())
        frame = system.frames[self._index % len(system.frames)]
        self._index += 1
        self.captured += 1
        return frame

    def _array_for(self, rgb: np.ndarray, name: str) -> np.ndarray:
        stream = self.config[name]
        width, height = stream["size"]
        transform = self.config["transform"]
        image = rgb[::-1] if transform.vflip else rgb
        image = image[:, ::-1] if transform.hflip else image
        resized = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((width, height), Image.Resampling.BILINEAR))
        return _encode(resized, stream["format"], stream["stride"])

    def capture_array(self, name: str = "main") -> np.ndarray:
        return self._array_for(self._next_frame(), name)

    def capture_request(self) -> FakeRequest:
        frame = self._next_frame()
        self._held += 1
        return FakeRequest(self, frame)


def make_modules(system: FakeCameraSystem) -> tuple[ModuleType, ModuleType]:
    """Return fresh ``picamera2`` and ``libcamera`` modules bound to ``system``."""
    picamera2 = ModuleType("picamera2")
    picamera2.Picamera2 = type("Picamera2", (FakePicamera2,), {"system": system})
    libcamera = ModuleType("libcamera")
    libcamera.Transform = Transform
    return picamera2, libcamera


def install(monkeypatch: Any, system: FakeCameraSystem) -> None:
    """Make ``import picamera2`` and ``import libcamera`` return the fake for one test."""
    picamera2, libcamera = make_modules(system)
    monkeypatch.setitem(sys.modules, "picamera2", picamera2)
    monkeypatch.setitem(sys.modules, "libcamera", libcamera)
