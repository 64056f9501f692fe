"""systemd service notifications: READY=1, STATUS=, WATCHDOG=1 and STOPPING=1.

The unit runs the kiosk as ``Type=notify`` with ``WatchdogSec=``. Messages go
through systemd-python's ``systemd.daemon.notify`` when it is importable, else
as one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET (a name starting
with "@" is a Linux abstract socket). Without $NOTIFY_SOCKET, for example when
a technician runs the kiosk by hand, every call does nothing.

``Watchdog`` sends WATCHDOG=1 only while the kiosk is alive in the sense the
visitor sees: camera frames arrive and screens render. A stalled camera or a
hung render loop therefore stops the pings, and systemd restarts the service
after WatchdogSec. While the camera is known to be broken, the daemon shows
OUT OF ORDER and retries on its own; it reports each retry with
``recovering()``, which keeps the pings going as long as screens still render,
so a camera that stays unplugged does not turn into a restart loop.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def _systemd_sender() -> Callable[[str], bool] | None:
    try:
        from systemd import daemon  # systemd-python, from apt python3-systemd
    except ImportError:
        return None
    return daemon.notify


def _socket_address(name: str) -> str:
    # An abstract socket name is given with a leading "@" and addressed with a NUL byte.
    return "\0" + name[1:] if name.startswith("@") else name


class Notifier:
    """Send sd_notify messages to the service manager.

    ``use_systemd`` chooses systemd-python (True), the plain datagram (False) or
    whichever is available (None). ``socket_path`` overrides $NOTIFY_SOCKET.
    """

    def __init__(self, *, socket_path: str | None = None, use_systemd: bool | None = None) -> None:
        self.socket_path = socket_path if socket_path is not None else os.environ.get("NOTIFY_SOCKET", "")
        sender = _systemd_sender() if use_systemd is not False else None
        if use_systemd and sender is None:
            raise ImportError("systemd-python is not installed (apt install python3-systemd)")
        # systemd-python reads $NOTIFY_SOCKET itself, so it is used only for the environment's socket.
        self._systemd_notify = sender if socket_path is None else None
        self._lock = threading.Lock()
        self._failed_once = False

    @property
    def enabled(self) -> bool:
        return bool(self.socket_path)

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=value`` assignments in one datagram; return False when no socket is set or it cannot be reached."""
        if not self.enabled:
            return False
        message = "\n".join(assignments)
        try:
            with self._lock:
                if self._systemd_notify is not None:
                    return bool(self._systemd_notify(message))
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                    sock.connect(_socket_address(self.socket_path))
                    sock.sendall(message.encode("utf-8"))
            return True
        except OSError as exc:
            if not self._failed_once:
                log.warning("cannot notify systemd at %s: %s", self.socket_path, exc)
                self._failed_once = True
            return False

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        # One line: systemctl status shows only the first one.
        return self.send("STATUS=" + " ".join(text.split()))

    def reloading(self) -> bool:
        monotonic_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec}")

    def stopping(self, status: str = "") -> bool:
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")


def watchdog_interval() -> float | None:
    """Return the watchdog timeout in seconds from $WATCHDOG_USEC, or None when not enabled.

    As sd_watchdog_enabled(3), $WATCHDOG_PID must be unset or this process's id.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000


class Watchdog:
    """Ping WATCHDOG=1 at half the timeout, only while frames arrive and screens render.

    Call ``frame_arrived()`` for every camera frame, ``rendered()`` for every
    drawn screen and ``recovering()`` for every camera retry while it is out of
    order; then call ``tick()`` often (the render loop does). A ping is sent when
    half the timeout has passed since the last one and, since that last ping,
    a screen was rendered and either a frame arrived or a retry happened.
    """

    def __init__(self, notifier: Notifier, timeout: float | None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.notifier = notifier
        self.timeout = timeout
        self.interval = timeout / 2 if timeout else None
        self._clock = clock
        self._lock = threading.Lock()
        self._last_ping = clock()
        self._frame = self._render = self._recovery = False
        self.pings = 0

    @property
    def enabled(self) -> bool:
        return self.interval is not None and self.notifier.enabled

    def frame_arrived(self) -> None:
        self._frame = True

    def rendered(self) -> None:
        self._render = True

    def recovering(self) -> None:
        self._recovery = True

    def tick(self) -> bool:
        """Send WATCHDOG=1 if it is due and the kiosk is alive; return whether it was sent."""
        if not self.enabled:
            return False
        with self._lock:
            now = self._clock()
            if now - self._last_ping < self.interval:
                return False
            if not (self._render and (self._frame or self._recovery)):
                return False
            self._frame = self._render = self._recovery = False
            self._last_ping = now
        sent = self.notifier.watchdog()
        self.pings += sent
        return sent
