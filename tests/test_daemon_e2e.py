"""`expression-portrait run` as systemd runs it: a subprocess with NOTIFY_SOCKET and WATCHDOG_USEC."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from daemon_process import BIN, DaemonProcess
from expression_portrait import media

CONFIG = """
[camera]
analysis_width = 640
analysis_height = 360
[display]
fps = 15
width = 1280
height = 720
[models]
num_threads = 1
[control]
socket = "@SOCKET@"
[metrics]
enabled = false
"""


@pytest.mark.slow
def test_daemon_lifecycle(tmp_path):
    daemon = DaemonProcess(tmp_path, CONFIG, replay=media.path("single_face.mp4"), watchdog_usec=2_000_000)
    with daemon:
        # READY=1 once the models are loaded and the first screen is drawn.
        _, ready = daemon.wait_message("READY=1", timeout=90)
        assert "STATUS=state running, camera ok, display ok" in ready

        # Status over the control socket, and through the command a technician types.
        status = wait_healthy(daemon)
        assert status["state"] == "running"
        assert status["camera"]["source"] == "replay:single_face.mp4"
        assert status["watchdog"] == {"enabled": True, "timeout_s": 2.0, "pings": status["watchdog"]["pings"]}
        text = subprocess.run([str(BIN), "status", "--socket", str(daemon.socket_path)], capture_output=True,
                              text=True, timeout=30)
        assert text.returncode == 0, text.stderr
        assert "healthy:      yes" in text.stdout
        as_json = subprocess.run([str(BIN), "status", "--json", "--socket", str(daemon.socket_path)],
                                 capture_output=True, text=True, timeout=30)
        assert json.loads(as_json.stdout)["healthy"] is True

        # WATCHDOG=1 about every half of WATCHDOG_USEC while frames flow and screens render.
        started = time.monotonic()
        time.sleep(4.5)
        pings = [stamp for stamp, message in daemon.messages if message == "WATCHDOG=1" and stamp >= started]
        gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
        # Arrival times jitter by a frame or two on a busy machine; the timeout itself is 2 s.
        assert 3 <= len(pings) <= 6, pings
        assert all(0.75 <= gap < 1.6 for gap in gaps), gaps

        # SIGHUP: a valid change is applied without dropping the display.
        daemon.config_path.write_text(daemon.config_path.read_text().replace("[display]", "[flow]\npage_seconds = 12.0\n[display]"))
        sent = daemon.signal(signal.SIGHUP)
        daemon.wait_message("RELOADING=1", timeout=20, after=sent)
        _, reloaded = daemon.wait_message("READY=1", timeout=20, after=sent)
        assert "display ok" in reloaded
        assert wait_for_log(daemon, "reloaded")
        assert daemon.request("status")["display"]["state"] == "ok"

        # SIGHUP with an invalid file: the running config stays.
        daemon.config_path.write_text(daemon.config_path.read_text().replace("page_seconds = 12.0", "page_seconds = -1.0"))
        sent = daemon.signal(signal.SIGHUP)
        daemon.wait_message("READY=1", timeout=20, after=sent)
        errors = daemon.request("status")["last_errors"]
        assert any(e["kind"] == "reload" and "page_seconds = -1.0" in e["message"] for e in errors)
        assert daemon.process.poll() is None

        # SIGTERM: STOPPING=1, then a clean exit within a few seconds.
        sent = daemon.signal(signal.SIGTERM)
        daemon.wait_message("STOPPING=1", timeout=5, after=sent)
        code = daemon.process.wait(timeout=10)
        elapsed = time.monotonic() - sent

    assert code == 0, daemon.stderr()
    assert elapsed < 6.0
    assert not daemon.socket_path.exists()
    assert "expression-portrait stopped" in daemon.stderr()


@pytest.mark.slow
def test_status_when_daemon_not_running(tmp_path):
    result = subprocess.run([str(BIN), "status", "--socket", str(tmp_path / "none.sock")],
                            capture_output=True, text=True, timeout=30)

    assert result.returncode == 1
    assert "the kiosk daemon is not running" in result.stderr


def wait_healthy(daemon: DaemonProcess, timeout: float = 60.0) -> dict:
    end = time.monotonic() + timeout
    status = {}
    while time.monotonic() < end:
        status = daemon.request("status")
        if status["healthy"] and status["counts"]["analyses"] > 2:
            return status
        time.sleep(0.2)
    raise AssertionError(f"not healthy within {timeout} s: {status}\n{daemon.stderr()}")


def wait_for_log(daemon: DaemonProcess, text: str, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if text in daemon.stderr():
            return True
        time.sleep(0.1)
    return False
