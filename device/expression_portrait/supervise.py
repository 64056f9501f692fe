"""Keep the camera running: detect a missing, busy or stalled camera and reopen it with backoff.

``SupervisedSource`` wraps the real frame source (the camera or a replay) and
is itself a FrameSource, so the kiosk reads from it as from any camera. It
never raises for a camera fault: ``read`` returns None while the camera is
out of order, and a supervisor thread closes the broken source and opens a
new one after ``retry_initial`` seconds, doubling the wait after each failed
attempt up to ``retry_max``. Each change of
state is logged once and reported to ``on_change`` (the daemon shows the
OUT OF ORDER screen and updates systemd's STATUS).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from expression_portrait.errors import CameraError, DecodeError
from expression_portrait.sources import Frame, FrameSource

log = logging.getLogger(__name__)

OK = "ok"
STARTING = "starting"


class SupervisedSource:
    """A FrameSource that survives the camera failing, and reopens it with backoff.

    ``factory`` builds a fresh, unstarted source each time the camera is
    (re)opened. ``on_change(state, message)`` is called from the reader's or
    the supervisor's thread with state "ok", or "missing", "busy", "stalled"
    or "failed" and a message for the technician. ``on_frame(frame)`` and
    ``on_recovering()`` feed the watchdog.
    """

    def __init__(self, factory: Callable[[], FrameSource], *, stall_timeout: float, retry_initial: float,
                 retry_max: float, on_change: Callable[[str, str], None] | None = None,
                 on_frame: Callable[[Frame], None] | None = None,
                 on_recovering: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.factory = factory
        self.stall_timeout = stall_timeout
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.on_change = on_change or (lambda state, message: None)
        self.on_frame = on_frame or (lambda frame: None)
        self.on_recovering = on_recovering or (lambda: None)
        self._clock = clock
        self._lock = threading.RLock()
        self._source: FrameSource | None = None
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.name = "camera"
        self.state = STARTING
        self.message = ""
        self.attempts = 0  # failed opens since the last success
        self.restarts = 0  # successful reopens after a fault
        self.next_retry_at: float | None = None
        self._backoff = retry_initial
        self._last_frame_at = clock()

    # The FrameSource protocol.

    def start(self) -> None:
        """Open the source once now; on failure keep retrying in the background."""
        self._stop.clear()
        self._open()
        self._supervisor = threading.Thread(target=self._supervise, name="camera-supervisor", daemon=True)
        self._supervisor.start()

    def read(self, timeout: float) -> Frame | None:
        """Return the newest frame, or None within ``timeout`` when none came or the camera is out of order."""
        with self._lock:
            source = self._source if self.state == OK else None
        if source is None:
            self._stop.wait(timeout)
            return None
        try:
            frame = source.read(timeout)
        except (CameraError, DecodeError) as exc:
            self._fault(getattr(exc, "kind", "failed"), str(exc), source)
            return None
        now = self._clock()
        if frame is None:
            if now - self._last_frame_at > self.stall_timeout:
                self._fault("stalled", f"{source.name}: no frame for {now - self._last_frame_at:.1f} s "
                            "(loose ribbon cable, weak power supply or a camera driver hang)", source)
            return None
        self._last_frame_at = now
        self.on_frame(frame)
        return frame

    def stop(self) -> None:
        """Stop the supervisor and close the source within a few seconds."""
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
            self._supervisor = None
        with self._lock:
            source, self._source = self._source, None
        if source is not None:
            source.stop()

    def __enter__(self) -> SupervisedSource:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Supervision.

    def restart(self, factory: Callable[[], FrameSource] | None = None) -> None:
        """Close the current source and open a new one, e.g. after the camera settings changed."""
        with self._lock:
            if factory is not None:
                self.factory = factory
            source, self._source = self._source, None
            self.state = STARTING
        if source is not None:
            source.stop()
        self._backoff = self.retry_initial
        self._open()

    def _open(self) -> None:
        try:
            source = self.factory()
            source.start()
        except (CameraError, DecodeError) as exc:
            self.attempts += 1
            self._schedule_retry(getattr(exc, "kind", "failed"), str(exc))
            return
        with self._lock:
            recovered = self.state not in (OK, STARTING)
            self._source = source
            self.name = source.name
            self.state = OK
            self.message = ""
            self.next_retry_at = None
            self._last_frame_at = self._clock()
        if recovered:
            self.restarts += 1
            log.info("camera recovered after %d failed attempt(s): %s", self.attempts, source.name,
                     extra={"CAMERA_STATE": OK})
        self.attempts = 0
        self._backoff = self.retry_initial
        self.on_change(OK, "")

    def _fault(self, kind: str, message: str, source: FrameSource) -> None:
        with self._lock:
            if self._source is not source:
                return  # another thread already handled this source's fault
            self._source = None
        # read() runs in the display loop, and closing a hung camera can block in libcamera,
        # so the broken source is closed in a thread of its own while the screen goes on.
        threading.Thread(target=_close_quietly, args=(source,), name="camera-close", daemon=True).start()
        self._schedule_retry(kind, message)

    def _schedule_retry(self, kind: str, message: str) -> None:
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self.retry_max)
        with self._lock:
            changed = (self.state, self.message) != (kind, message)
            self.state = kind
            self.message = message
            self.next_retry_at = self._clock() + delay
        # The repeat filter in logs keeps an unplugged camera from flooding the journal.
        log.error("camera %s: %s; retrying in %.1f s", kind, message, delay,
                  extra={"CAMERA_STATE": kind, "RETRY_IN_S": f"{delay:.1f}"})
        if changed:
            self.on_change(kind, message)

    def _supervise(self) -> None:
        while not self._stop.wait(0.25):
            with self._lock:
                due = self.state not in (OK, STARTING) and self.next_retry_at is not None \
                    and self._clock() >= self.next_retry_at
                faulty = self.state not in (OK, STARTING)
            if faulty:
                self.on_recovering()
            if due:
                log.info("reopening the camera (attempt %d)", self.attempts + 1)
                self._open()

    def describe(self) -> dict[str, Any]:
        """Return the camera's supervision state for status."""
        with self._lock:
            source = self._source
            retry_in = None if self.next_retry_at is None else max(0.0, self.next_retry_at - self._clock())
            described = {
                "state": self.state,
                "message": self.message,
                "source": self.name,
                "failed_attempts": self.attempts,
                "restarts": self.restarts,
                "next_retry_in_s": None if retry_in is None else round(retry_in, 1),
                "last_frame_age_s": round(self._clock() - self._last_frame_at, 2),
            }
        if source is not None and hasattr(source, "describe"):
            described.update({k: v for k, v in source.describe().items() if k not in described})
        return described


def _close_quietly(source: FrameSource) -> None:
    try:
        source.stop()
    except Exception as exc:  # the source is broken already; closing it must not stop recovery
        log.warning("closing the failed camera raised: %s", exc)
