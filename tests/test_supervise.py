"""Camera supervision: faults injected into the fake picamera2, recovery with backoff."""

from __future__ import annotations

import time

import numpy as np
import pytest

import fake_picamera2
from expression_portrait import decode, media
from expression_portrait.camera import CameraSettings, PicameraSource
from expression_portrait.supervise import SupervisedSource
from fake_picamera2 import FakeCameraSystem

SETTINGS = CameraSettings(width=640, height=360, analysis_width=320, analysis_height=180, fps=30.0)


@pytest.fixture(scope="module")
def video_frames() -> list[np.ndarray]:
    return list(decode.iter_video_frames(media.path("single_face.mp4"), max_frames=4))


@pytest.fixture
def system(video_frames, monkeypatch) -> FakeCameraSystem:
    world = FakeCameraSystem(video_frames)
    fake_picamera2.install(monkeypatch, world)
    return world


def supervised(changes, **overrides):
    options = {"stall_timeout": 0.5, "retry_initial": 0.2, "retry_max": 0.8}
    options.update(overrides)
    return SupervisedSource(lambda: PicameraSource(SETTINGS), on_change=lambda s, m: changes.append((s, m)),
                            **options)


def read_until(source, predicate, seconds=5.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        frame = source.read(0.05)
        if predicate(frame):
            return frame
    raise AssertionError(f"condition not met within {seconds} s; state {source.describe()}")


def test_healthy_camera_delivers(system):
    changes = []
    with supervised(changes) as source:
        frame = read_until(source, lambda f: f is not None)

    assert frame.display.shape == (360, 640, 3)
    assert changes == [("ok", "")]
    assert system.open_cameras == []


def test_missing_camera_retries_with_backoff_then_recovers(system):
    system.cameras_backup, system.cameras = system.cameras, []
    changes = []
    source = supervised(changes)

    source.start()
    assert source.read(0.1) is None
    assert source.state == "missing"
    time.sleep(1.2)
    attempts = source.attempts
    system.cameras = system.cameras_backup
    frame = read_until(source, lambda f: f is not None)
    source.stop()

    # 0.2 + 0.4 + 0.8 s: three failed opens fit in 1.2 s, a fourth would need 2.2 s.
    assert 2 <= attempts <= 4
    assert frame is not None
    assert changes[0][0] == "missing"
    assert "no camera at index 0" in changes[0][1]
    assert changes[-1] == ("ok", "")
    assert source.restarts == 1


def test_busy_camera_is_out_of_order_until_freed(system):
    system.busy = True
    changes = []
    source = supervised(changes)
    source.start()

    assert source.describe()["state"] == "busy"
    assert source.describe()["next_retry_in_s"] <= 0.2
    system.busy = False
    read_until(source, lambda f: f is not None)
    source.stop()

    assert [state for state, _ in changes] == ["busy", "ok"]


def test_stalled_camera_is_reopened(system):
    changes = []
    recoveries = []
    source = supervised(changes)
    source.on_recovering = lambda: recoveries.append(1)
    source.start()
    read_until(source, lambda f: f is not None)

    system.stalled.set()
    read_until(source, lambda f: source.state == "stalled", seconds=3)
    opened_before = len(system.opened)
    system.stalled.clear()
    read_until(source, lambda f: f is not None and source.state == "ok")
    source.stop()

    assert [state for state, _ in changes] == ["ok", "stalled", "ok"]
    assert "no frame for" in changes[1][1]
    assert len(system.opened) > opened_before
    assert recoveries, "the supervisor reported no recovery work to the watchdog"
    assert system.open_cameras == []


def test_capture_failure_is_reopened(system):
    changes = []
    source = supervised(changes)
    source.start()
    read_until(source, lambda f: f is not None)

    system.fail_capture = "Camera frontend has timed out!"
    read_until(source, lambda f: source.state == "failed", seconds=3)
    system.fail_capture = None
    read_until(source, lambda f: f is not None and source.state == "ok")
    source.stop()

    assert [state for state, _ in changes] == ["ok", "failed", "ok"]


def test_stop_while_out_of_order_is_quick(system):
    system.cameras = []
    source = supervised([])
    source.start()

    started = time.monotonic()
    source.stop()

    assert time.monotonic() - started < 1.0


def test_restart_applies_new_settings(system):
    source = supervised([])
    source.start()
    read_until(source, lambda f: f is not None)

    other = CameraSettings(width=320, height=180, analysis_width=160, analysis_height=90, fps=30.0)
    source.restart(lambda: PicameraSource(other))
    frame = read_until(source, lambda f: f is not None)
    source.stop()

    assert frame.display.shape == (180, 320, 3)
    assert system.open_cameras == []


class HangingSource:
    """A camera that fails and then hangs for 3 s when closed, as libcamera can."""

    name = "camera:hanging"

    def start(self):
        pass

    def read(self, timeout):
        from expression_portrait.errors import CameraError

        raise CameraError("Camera frontend has timed out!")

    def stop(self):
        time.sleep(3)


def test_hanging_close_does_not_block_reader():
    source = SupervisedSource(HangingSource, stall_timeout=1, retry_initial=10, retry_max=10)
    source.start()

    started = time.monotonic()
    assert source.read(0.0) is None
    elapsed = time.monotonic() - started
    source._stop.set()

    assert elapsed < 0.5
    assert source.state == "failed"
