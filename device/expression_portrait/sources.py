"""Frame sources: where the kiosk's pictures come from.

Every source follows the same small protocol, so the kiosk cannot tell a
recorded video from the camera module:

- ``start()`` begins delivering frames, ``stop()`` ends it and releases the device;
- ``read(timeout)`` returns the newest frame not yet returned, or None when no
  new frame arrived within ``timeout`` seconds. A slow reader never builds a
  queue: frames it was too slow for are dropped.

The camera module's adapter lives in ``camera.py``. This module contains the
protocol and the replay source used by tests, the demo and technicians.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from expression_portrait import decode
from expression_portrait.errors import CameraError, DecodeError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """One picture in two sizes: ``display`` for the screen, ``analysis`` for the models.

    Both are (H, W, 3) RGB uint8 and may be the same array. Detections are in
    ``analysis`` pixels; multiply by ``scale`` to get ``display`` pixels.
    """

    display: np.ndarray
    analysis: np.ndarray
    sequence: int
    timestamp: float  # time.monotonic() when the frame was captured or decoded

    @property
    def scale(self) -> float:
        return self.display.shape[1] / self.analysis.shape[1]


class FrameSource(Protocol):
    """Interface the kiosk reads frames through, from a camera or a recording."""

    name: str

    def start(self) -> None: ...

    def read(self, timeout: float) -> Frame | None: ...

    def stop(self) -> None: ...


def downscale(image: np.ndarray, width: int) -> np.ndarray:
    """Return ``image`` resized to ``width`` pixels wide, keeping its aspect ratio.

    An image already that narrow or narrower is returned unchanged.
    """
    height, current = image.shape[:2]
    if current <= width:
        return image
    from PIL import Image

    new_height = max(1, round(height * width / current))
    resized = Image.fromarray(image).resize((width, new_height), Image.Resampling.BILINEAR)
    return np.asarray(resized)


class LatestFrameSlot:
    """A one-frame mailbox: the producer overwrites, the consumer takes the newest.

    Sources with their own capture thread share this, so none of them can queue.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._frame: Frame | None = None
        self._taken = -1
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._condition:
            if self._frame is not None and self._frame.sequence > self._taken:
                self.dropped += 1
            self._frame = frame
            self._condition.notify_all()

    def take(self, timeout: float) -> Frame | None:
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._frame is None or self._frame.sequence <= self._taken:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)
            self._taken = self._frame.sequence
            return self._frame

    def wake(self) -> None:
        with self._condition:
            self._condition.notify_all()


class ReplaySource:
    """Frames from a video file or a folder of images, as if from a camera.

    ``realtime`` paces frames at the video's frame rate (images at ``image_fps``);
    without it frames come as fast as they decode, still through the one-frame
    slot, so a slow reader sees gaps rather than a backlog. ``loop`` starts over
    at the end; otherwise ``finished`` becomes True and ``read`` returns None.
    """

    def __init__(self, path: str | Path, *, realtime: bool = True, loop: bool = True,
                 analysis_width: int = 640, image_fps: float = 15.0) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DecodeError(f"{self.path}: replay source not found; give a video file or a folder of images")
        if self.path.is_dir() and not self._image_files():
            raise DecodeError(f"{self.path}: folder contains no images ({', '.join(sorted(decode.IMAGE_SUFFIXES))})")
        if analysis_width < 16:
            raise ValueError(f"analysis_width must be 16 pixels or more, got {analysis_width}")
        self.name = f"replay:{self.path.name}"
        self.realtime = realtime
        self.loop = loop
        self.analysis_width = analysis_width
        self.image_fps = image_fps
        self.finished = False
        self.error: Exception | None = None
        self._slot = LatestFrameSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def dropped(self) -> int:
        return self._slot.dropped

    def _image_files(self) -> list[Path]:
        return sorted(p for p in self.path.iterdir() if p.suffix.lower() in decode.IMAGE_SUFFIXES)

    def _frame_interval(self) -> float:
        if self.path.is_dir():
            return 1.0 / self.image_fps
        import av

        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise DecodeError(f"{self.path}: contains no video stream; give a video file "
                                      "or a folder of images")
                rate = container.streams.video[0].average_rate
                return 1.0 / float(rate) if rate else 1.0 / 25
        except (av.FFmpegError, OSError) as exc:
            raise DecodeError(f"{self.path}: not a readable video ({exc})") from exc

    def _images(self) -> Iterator[np.ndarray]:
        if self.path.is_dir():
            for file in self._image_files():
                yield decode.load_image(file)
        elif decode.is_video(self.path):
            yield from decode.iter_video_frames(self.path)
        else:
            yield decode.load_image(self.path)

    def start(self) -> None:
        if self._thread is not None:
            return
        interval = self._frame_interval() if self.realtime else 0.0
        self._stop.clear()
        self._thread = threading.Thread(target=self._produce, args=(interval,),
                                        name=f"replay-{self.path.name}", daemon=True)
        self._thread.start()
        log.info("replay source started: %s (realtime=%s, loop=%s)", self.path, self.realtime, self.loop)

    def _produce(self, interval: float) -> None:
        sequence = 0
        next_due = time.monotonic()
        try:
            while not self._stop.is_set():
                produced = 0
                for image in self._images():
                    if self._stop.is_set():
                        return
                    if interval:
                        delay = next_due - time.monotonic()
                        if delay > 0 and self._stop.wait(delay):
                            return
                        next_due = max(next_due + interval, time.monotonic() - interval)
                    image.setflags(write=False)
                    analysis = downscale(image, self.analysis_width)
                    self._slot.put(Frame(image, analysis, sequence, time.monotonic()))
                    sequence += 1
                    produced += 1
                if not self.loop or produced == 0:
                    break
        except DecodeError as exc:
            self.error = exc
            log.error("replay source %s failed: %s", self.path, exc)
        finally:
            self.finished = True
            self._slot.wake()

    def read(self, timeout: float) -> Frame | None:
        """Return the newest unread frame, or None after ``timeout`` seconds.

        Raises CameraError when the recording cannot be decoded.
        """
        if self._thread is None:
            raise CameraError(f"{self.name}: read() before start()")
        frame = self._slot.take(0 if self.finished else timeout)
        if frame is None and self.error is not None:
            raise CameraError(f"{self.name}: {self.error}")
        return frame

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        log.info("replay source stopped: %s", self.path)

    def __enter__(self) -> ReplaySource:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
