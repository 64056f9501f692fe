"""The camera module as a frame source, through picamera2.

One ``Picamera2`` is opened and configured once, with two streams from the
same sensor readout: ``main`` for the screen and a small ``lores`` stream for
the face models. A capture thread takes one completed request at a time,
copies both arrays out, releases the request at once (holding buffers starves
the camera) and leaves the newest frame in a one-frame slot.

picamera2 is imported only in ``start()``: it needs the libcamera bindings
that Raspberry Pi OS installs with apt, so the rest of the package, the CLI
and the tests never need it.

Colour order follows picamera2's names, which are DRM fourcc names and so
read backwards in memory: "RGB888" arrays are B, G, R and "BGR888" arrays are
R, G, B; "XRGB8888" is B, G, R, X. A YUV420 lores array has shape
(height * 3 / 2, stride): the Y plane on top, then the U and V planes, each
row holding two half-width chroma rows. On a Pi 4 (VC4 ISP) lores must be YUV;
a Pi 5 also accepts an RGB lores stream.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from types import ModuleType
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from expression_portrait.errors import CameraError
from expression_portrait.sources import Frame, LatestFrameSlot

log = logging.getLogger(__name__)

# picamera2 format -> the channel order of the array picamera2 returns for it.
MAIN_FORMAT_ORDER = {"BGR888": "RGB", "RGB888": "BGR", "XBGR8888": "RGBX", "XRGB8888": "BGRX"}
ANALYSIS_FORMAT_ORDER = {"YUV420": "YUV420", **MAIN_FORMAT_ORDER}


class CameraSettings(BaseModel):
    """The [camera] section: which camera, its two streams and its orientation."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    index: int = Field(0, ge=0, le=7, description="camera number as picamera2 counts them (0 = first CSI camera)")
    width: int = Field(1280, ge=64, le=4608, multiple_of=2, description="display stream width in pixels")
    height: int = Field(720, ge=64, le=3496, multiple_of=2, description="display stream height in pixels")
    analysis_width: int = Field(640, ge=64, le=1920, multiple_of=2,
                                description="analysis (lores) stream width in pixels, at most the display width")
    analysis_height: int = Field(360, ge=48, le=1080, multiple_of=2,
                                 description="analysis (lores) stream height in pixels, at most the display height")
    fps: float = Field(15.0, ge=1.0, le=60.0, description="frame rate in frames per second, fixed")
    rotation: Literal[0, 90, 180, 270] = Field(
        0, description="clockwise rotation in degrees; 180 is done by the sensor, 90 and 270 in software")
    hflip: bool = Field(False, description="flip the sensor image left to right, e.g. for a camera filming through a mirror; "
                          "the mirror-like view on screen is [display] mirror")
    vflip: bool = Field(False, description="flip top to bottom")
    main_format: Literal["BGR888", "RGB888", "XBGR8888", "XRGB8888"] = Field(
        "BGR888", description="picamera2 format of the display stream; BGR888 is RGB in memory and needs no conversion")
    analysis_format: Literal["YUV420", "BGR888", "RGB888"] = Field(
        "YUV420", description="picamera2 format of the analysis stream; a Pi 4 accepts only YUV420")
    buffer_count: int = Field(4, ge=2, le=8, description="camera buffers; more smooths capture but uses CMA memory")
    tuning_file: str = Field("", description="libcamera tuning file name, e.g. imx219_noir.json for a NoIR module; empty for the default")
    stall_timeout_s: float = Field(5.0, ge=1.0, le=60.0,
                                   description="seconds without a frame before the camera counts as stalled")
    retry_initial_s: float = Field(2.0, ge=0.1, le=60.0, description="first wait before reopening a failed camera, in seconds")
    retry_max_s: float = Field(60.0, ge=1.0, le=3600.0, description="maximum wait between camera reopen attempts, in seconds")

    @model_validator(mode="after")
    def _check_streams(self) -> CameraSettings:
        if self.analysis_width > self.width or self.analysis_height > self.height:
            raise ValueError(
                f"analysis stream {self.analysis_width}x{self.analysis_height} is larger than the display "
                f"stream {self.width}x{self.height}; picamera2 requires lores <= main in both dimensions")
        main_aspect = self.width / self.height
        analysis_aspect = self.analysis_width / self.analysis_height
        if abs(main_aspect - analysis_aspect) > 0.02 * main_aspect:
            raise ValueError(
                f"analysis stream {self.analysis_width}x{self.analysis_height} has another aspect ratio than "
                f"the display stream {self.width}x{self.height}; the ISP would stretch it, so faces would be "
                "judged distorted")
        if self.retry_max_s < self.retry_initial_s:
            raise ValueError(f"retry_max_s ({self.retry_max_s}) is shorter than retry_initial_s ({self.retry_initial_s})")
        return self


def yuv420_to_rgb(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """Convert a picamera2 YUV420 array of shape (height * 3 / 2, stride) to (height, width, 3) RGB.

    Uses full-range BT.601 (the sYCC colour space of picamera2's preview
    configuration). Chroma is upsampled by repeating each sample 2x2.
    """
    stride = array.shape[1]
    if array.shape[0] != height * 3 // 2 or stride < width:
        raise CameraError(f"YUV420 array has shape {array.shape}, expected ({height * 3 // 2}, >= {width})")
    luma = array[:height, :width].astype(np.float32)
    # Each chroma plane is height/2 rows of stride/2 bytes, packed right after the Y plane;
    # with an odd height/2 a plane ends mid-row of the array, so slice the flat buffer.
    flat = array.reshape(-1)
    luma_bytes = height * stride
    chroma_bytes = (height // 2) * (stride // 2)
    u_plane = flat[luma_bytes:luma_bytes + chroma_bytes].reshape(height // 2, stride // 2)[:, :width // 2]
    v_plane = flat[luma_bytes + chroma_bytes:luma_bytes + 2 * chroma_bytes].reshape(
        height // 2, stride // 2)[:, :width // 2]
    u = np.repeat(np.repeat(u_plane.astype(np.float32) - 128.0, 2, axis=0), 2, axis=1)
    v = np.repeat(np.repeat(v_plane.astype(np.float32) - 128.0, 2, axis=0), 2, axis=1)

    rgb = np.empty((height, width, 3), np.float32)
    rgb[..., 0] = luma + 1.402 * v
    rgb[..., 1] = luma - 0.344136 * u - 0.714136 * v
    rgb[..., 2] = luma + 1.772 * u
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def to_rgb(array: np.ndarray, order: str, width: int, height: int) -> np.ndarray:
    """Return a picamera2 array in ``order`` (see MAIN_FORMAT_ORDER) as contiguous (H, W, 3) RGB."""
    if order == "YUV420":
        return yuv420_to_rgb(array, width, height)
    if array.ndim != 3 or array.shape[2] != len(order):
        raise CameraError(f"{order} array has shape {array.shape}, expected (h, w, {len(order)})")
    image = array[:height, :width]
    if order.startswith("BGR"):
        return np.ascontiguousarray(image[..., 2::-1])
    if order == "RGBX":
        return np.ascontiguousarray(image[..., :3])
    return image


def _rotate(image: np.ndarray, rotation: int) -> np.ndarray:
    # 0 and 180 degrees are done by the sensor transform; only 90 and 270 reach here.
    if rotation == 90:
        return np.ascontiguousarray(np.rot90(image, k=-1))
    if rotation == 270:
        return np.ascontiguousarray(np.rot90(image, k=1))
    return image


class PicameraSource:
    """The camera module as a FrameSource: newest frame wins, old frames are dropped.

    ``picamera2_module`` and ``libcamera_module`` replace the imported modules,
    for tests with a fake; by default both are imported on ``start()``.
    ``start()`` raises CameraError with ``kind`` "missing", "busy" or "failed".
    ``read()`` raises CameraError with kind "failed" once the capture thread hit an
    error. A stall shows as ``read()`` returning None, and ``last_frame_age``
    is the time since the last frame.
    """

    def __init__(self, settings: CameraSettings | None = None, *,
                 picamera2_module: ModuleType | None = None,
                 libcamera_module: ModuleType | None = None) -> None:
        self.settings = settings or CameraSettings()
        self.name = f"camera:{self.settings.index}"
        self.model = ""  # sensor model, e.g. "imx708", known once started
        self.frames = 0
        self.error: CameraError | None = None
        self._picamera2_module = picamera2_module
        self._libcamera_module = libcamera_module
        self._camera: Any = None
        self._slot = LatestFrameSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_frame_at: float | None = None
        self._started_at = 0.0
        self._analysis_size = (self.settings.analysis_width, self.settings.analysis_height)

    @property
    def dropped(self) -> int:
        return self._slot.dropped

    @property
    def last_frame_age(self) -> float:
        """Seconds since the last frame arrived, or since start() when none arrived yet."""
        since = self._last_frame_at if self._last_frame_at is not None else self._started_at
        return time.monotonic() - since

    def _modules(self) -> tuple[ModuleType, ModuleType]:
        try:
            picamera2 = self._picamera2_module or importlib.import_module("picamera2")
            libcamera = self._libcamera_module or importlib.import_module("libcamera")
        except ImportError as exc:
            raise _camera_error(
                "missing", f"picamera2 cannot be imported ({exc}); install python3-picamera2 with apt and "
                "create the virtualenv with --system-site-packages") from exc
        return picamera2, libcamera

    def start(self) -> None:
        """Open, configure and start the camera, then start the capture thread."""
        if self._thread is not None:
            return
        picamera2, libcamera = self._modules()
        self._camera = self._open(picamera2)
        try:
            self._configure(libcamera)
            self._camera.start()
        except Exception as exc:
            self._close_camera()
            raise _camera_error("failed", f"{self.name}: cannot configure or start the camera: {exc}") from exc

        self.error = None
        self._started_at = time.monotonic()
        self._last_frame_at = None
        self._stop.clear()
        self._thread = threading.Thread(target=self._capture, name="camera-capture", daemon=True)
        self._thread.start()
        log.info("camera %s started: %s %dx%d display, %s %dx%d analysis, %.1f fps",
                 self.name, self.model or "unknown sensor", self.settings.width, self.settings.height,
                 self.settings.analysis_format, *self._analysis_size, self.settings.fps)

    def _open(self, picamera2: ModuleType) -> Any:
        settings = self.settings
        cameras = picamera2.Picamera2.global_camera_info()
        if settings.index >= len(cameras):
            found = ", ".join(str(c.get("Model", "?")) for c in cameras) or "none"
            raise _camera_error(
                "missing", f"{self.name}: no camera at index {settings.index} (cameras found: {found}); "
                "check the ribbon cable and run rpicam-hello --list-cameras")
        self.model = str(cameras[settings.index].get("Model", ""))

        kwargs: dict[str, Any] = {}
        if settings.tuning_file:
            try:
                kwargs["tuning"] = picamera2.Picamera2.load_tuning_file(settings.tuning_file)
            except RuntimeError as exc:
                raise _camera_error("failed", f"{self.name}: tuning file {settings.tuning_file!r} not found: {exc}") from exc
        try:
            return picamera2.Picamera2(settings.index, **kwargs)
        except IndexError as exc:
            # picamera2 indexes global_camera_info(); the camera vanished since the check above.
            raise _camera_error("missing", f"{self.name}: camera disappeared while opening it ({exc})") from exc
        except RuntimeError as exc:
            cause = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
            raise _camera_error(
                "busy", f"{self.name}: camera is busy or cannot be acquired: {exc}{cause}; another process "
                "(a second kiosk, rpicam-hello) may hold it") from exc

    def _configure(self, libcamera: ModuleType) -> None:
        settings = self.settings
        camera = self._camera
        half_turn = settings.rotation == 180
        transform = libcamera.Transform(hflip=int(settings.hflip != half_turn),
                                        vflip=int(settings.vflip != half_turn))
        frame_us = int(round(1_000_000 / settings.fps))
        config = camera.create_preview_configuration(
            main={"size": (settings.width, settings.height), "format": settings.main_format},
            lores={"size": (settings.analysis_width, settings.analysis_height), "format": settings.analysis_format},
            transform=transform,
            buffer_count=settings.buffer_count,
            controls={"FrameDurationLimits": (frame_us, frame_us)},
        )
        camera.align_configuration(config)
        camera.configure(config)
        # Alignment may have changed the lores size; read back what the camera delivers.
        lores = camera.stream_configuration("lores")
        self._analysis_size = tuple(lores["size"])
        if self._analysis_size != (settings.analysis_width, settings.analysis_height):
            log.info("camera adjusted the analysis stream to %dx%d", *self._analysis_size)

    def _capture(self) -> None:
        settings = self.settings
        main_order = MAIN_FORMAT_ORDER[settings.main_format]
        lores_order = ANALYSIS_FORMAT_ORDER[settings.analysis_format]
        sequence = 0
        while not self._stop.is_set():
            try:
                request = self._camera.capture_request()
                try:
                    main = request.make_array("main")
                    lores = request.make_array("lores")
                finally:
                    request.release()
                display = to_rgb(main, main_order, settings.width, settings.height)
                analysis = to_rgb(lores, lores_order, *self._analysis_size)
            except Exception as exc:
                if self._stop.is_set():
                    return
                self.error = _camera_error("failed", f"{self.name}: capture failed: {exc}")
                log.error("%s", self.error)
                self._slot.wake()
                return
            display = _rotate(display, settings.rotation)
            analysis = _rotate(analysis, settings.rotation)
            display.setflags(write=False)
            analysis.setflags(write=False)
            now = time.monotonic()
            self._last_frame_at = now
            self.frames += 1
            self._slot.put(Frame(display, analysis, sequence, now))
            sequence += 1

    def read(self, timeout: float) -> Frame | None:
        """Return the newest unread frame, or None when none arrived within ``timeout`` seconds."""
        if self._thread is None:
            raise CameraError(f"{self.name}: read() before start()")
        if self.error is not None:
            raise self.error
        frame = self._slot.take(timeout)
        if frame is None and self.error is not None:
            raise self.error
        return frame

    def stop(self) -> None:
        """Stop capturing and close the camera, so another process (or a retry) can open it."""
        self._stop.set()
        self._close_camera()
        if self._thread is not None:
            self._thread.join(timeout=3)
            if self._thread.is_alive():
                log.warning("camera capture thread did not end within 3 s; leaving it behind")
            self._thread = None
        log.info("camera %s stopped after %d frames", self.name, self.frames)

    def _close_camera(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        for step in (camera.stop, camera.close):
            try:
                step()
            except Exception as exc:  # a failing camera may refuse either; closing must go on
                log.warning("camera %s: %s() failed while closing: %s", self.name, step.__name__, exc)

    def describe(self) -> dict[str, Any]:
        """Return the camera's state for status: model, sizes, frames and last frame age."""
        return {
            "source": self.name,
            "model": self.model,
            "display_size": [self.settings.width, self.settings.height],
            "analysis_size": list(self._analysis_size),
            "fps_setting": self.settings.fps,
            "frames": self.frames,
            "dropped": self.dropped,
            "last_frame_age_s": round(self.last_frame_age, 2) if self._thread else None,
        }

    def __enter__(self) -> PicameraSource:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _camera_error(kind: str, message: str) -> CameraError:
    error = CameraError(message)
    error.kind = kind  # "missing", "busy", "stalled" or "failed"
    return error
