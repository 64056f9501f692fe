"""The daemon in this process with the real kiosk, real models and faults injected.

The daemon's loop runs in the test's main thread, as it does in the service,
because signals are only delivered there. A scenario thread watches its status
over the real control socket, injects faults into the fake picamera2 and ends
the run with a real SIGTERM.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import fake_picamera2
from expression_portrait import control, decode, media
from expression_portrait.config import LoadedConfig, parse_config
from expression_portrait.daemon import EXIT_MODELS, Daemon, OffscreenSink
from expression_portrait.errors import DisplayError
from expression_portrait.models import default_models_dir
from expression_portrait.notify import Notifier
from fake_picamera2 import FakeCameraSystem

CONFIG = """
[camera]
width = 640
height = 360
analysis_width = 320
analysis_height = 180
fps = 15.0
stall_timeout_s = 1.0
retry_initial_s = 0.3
retry_max_s = 1.0
[display]
fps = 15
width = 1280
height = 720
[flow]
no_frame_seconds = 30.0
[models]
num_threads = 1
[control]
socket = "{socket}"
[metrics]
directory = "{metrics}"
interval_s = 1.0
"""


@pytest.fixture(autouse=True)
def restore_root_logger():
    # The daemon installs its own log handler on the root logger; later tests must not inherit it.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="module")
def video_frames() -> list[np.ndarray]:
    return list(decode.iter_video_frames(media.path("single_face.mp4"), max_frames=12))


@pytest.fixture
def camera(video_frames, monkeypatch) -> FakeCameraSystem:
    world = FakeCameraSystem(video_frames)
    fake_picamera2.install(monkeypatch, world)
    return world


@pytest.fixture
def config_file(tmp_path) -> Path:
    (tmp_path / "metrics").mkdir()
    file = tmp_path / "config.toml"
    file.write_text(CONFIG.format(socket=tmp_path / "control.sock", metrics=tmp_path / "metrics"))
    return file


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    yield path, sock
    sock.close()


def make_daemon(config_file: Path, notify_path: Path | None = None, **options) -> Daemon:
    loaded = LoadedConfig(parse_config(config_file.read_text(), config_file), config_file)
    options.setdefault("display", "headless")
    notifier = Notifier(socket_path=str(notify_path) if notify_path else "", use_systemd=False)
    return Daemon(loaded, notifier=notifier, **options)


def run_scenario(daemon: Daemon, scenario: Callable[[Daemon], None], timeout: float = 60.0) -> int:
    """Run the daemon in this thread and ``scenario`` beside it; SIGTERM when the scenario ends."""
    failure: list[BaseException] = []
    finished = threading.Event()

    def drive():
        try:
            wait_for(lambda: daemon.control is not None and daemon.state == "running", timeout=30)
            scenario(daemon)
        except BaseException as exc:  # handed back to the test
            failure.append(exc)
        finally:
            if not finished.is_set():
                os.kill(os.getpid(), signal.SIGTERM)

    # A SIGTERM arriving after the daemon restored the handlers must not kill pytest.
    previous = signal.signal(signal.SIGTERM, lambda number, frame: None)
    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    try:
        code = daemon.run()
    finally:
        finished.set()
        driver.join(timeout)
        signal.signal(signal.SIGTERM, previous)
    if failure:
        raise failure[0]
    return code


def wait_for(condition: Callable[[], object], timeout: float = 15.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout} s")


def status(daemon: Daemon) -> dict:
    return control.request("status", path=daemon.control.path)


def test_camera_missing_then_recovers(camera, config_file):
    cameras, camera.cameras = camera.cameras, []
    daemon = make_daemon(config_file)
    seen = {}

    def scenario(d):
        seen["missing"] = wait_for(lambda: status(d)["camera"]["state"] == "missing" and status(d), what="missing")
        seen["screen"] = wait_for(lambda: status(d)["kiosk"]["state"] == "out_of_order" and status(d), what="screen")
        time.sleep(1.5)  # several retries
        seen["attempts"] = status(d)["camera"]["failed_attempts"]
        camera.cameras = cameras
        seen["ok"] = wait_for(lambda: status(d)["camera"]["state"] == "ok" and status(d)["kiosk"]["state"] != "out_of_order"
                              and status(d), what="recovery")

    code = run_scenario(daemon, scenario)

    assert code == 0
    assert seen["missing"]["healthy"] is False
    assert "no camera at index 0" in seen["missing"]["camera"]["message"]
    assert seen["screen"]["kiosk"]["out_of_order"] == "camera missing"
    assert seen["attempts"] >= 2
    assert any(e["kind"] == "camera_missing" for e in seen["ok"]["last_errors"])
    assert camera.open_cameras == []


def test_camera_busy_is_retried(camera, config_file):
    camera.busy = True
    daemon = make_daemon(config_file)
    seen = {}

    def scenario(d):
        seen["busy"] = wait_for(lambda: status(d)["camera"]["state"] == "busy" and status(d), what="busy")
        camera.busy = False
        wait_for(lambda: status(d)["camera"]["state"] == "ok", what="recovery")
        seen["frames"] = wait_for(lambda: status(d)["counts"]["frames"] > 5 and status(d)["counts"]["frames"])

    assert run_scenario(daemon, scenario) == 0
    assert "Device or resource busy" in seen["busy"]["camera"]["message"]
    assert seen["frames"] > 5


def test_camera_stall_is_detected_and_reopened(camera, config_file):
    daemon = make_daemon(config_file)
    seen = {}

    def scenario(d):
        wait_for(lambda: status(d)["counts"]["frames"] > 3, what="frames")
        opened = len(camera.opened)
        camera.stalled.set()
        seen["stalled"] = wait_for(lambda: status(d)["camera"]["state"] == "stalled" and status(d), what="stall")
        camera.stalled.clear()
        wait_for(lambda: status(d)["camera"]["state"] == "ok", what="reopen")
        seen["reopened"] = len(camera.opened) - opened

    assert run_scenario(daemon, scenario) == 0
    assert "no frame for" in seen["stalled"]["camera"]["message"]
    assert seen["reopened"] >= 1
    assert camera.open_cameras == []


def test_healthy_run_reports_everything(camera, config_file, tmp_path):
    daemon = make_daemon(config_file)
    seen = {}

    def scenario(d):
        seen["status"] = wait_for(lambda: (s := status(d))["healthy"] and s["counts"]["analyses"] > 3 and s,
                                  timeout=30, what="healthy")
        seen["metrics"] = wait_for(lambda: (tmp_path / "metrics" / "expression_portrait.prom").exists())

    assert run_scenario(daemon, scenario) == 0
    result = seen["status"]
    assert result["camera"]["model"] == "imx708"
    assert result["display"]["state"] == "ok"
    assert result["fps"] > 5
    assert {"detect", "total"} <= set(result["latency_ms"])
    assert result["latency_ms"]["total"]["p95_ms"] >= result["latency_ms"]["total"]["p50_ms"] > 0
    assert {m["name"] for m in result["models"]} >= {"emotion", "age", "gender"}
    assert all(len(m["sha256"]) == 64 for m in result["models"])
    assert result["runtime"].startswith(("ai-edge-litert", "tflite-runtime"))
    assert result["memory"]["rss_mib"] > 10
    text = (tmp_path / "metrics" / "expression_portrait.prom").read_text()
    assert "expression_portrait_frames_total" in text


def test_model_hash_mismatch_refuses_to_start(camera, config_file, tmp_path, monkeypatch, caplog):
    models = tmp_path / "models"
    shutil.copytree(default_models_dir(), models, ignore=shutil.ignore_patterns(".build", "*.py", "*.md"))
    victim = next(models.glob("*.tflite"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    monkeypatch.setenv("EXPRESSION_PORTRAIT_MODELS", str(models))

    code = make_daemon(config_file).run()

    assert code == EXIT_MODELS
    assert victim.name in caplog.text
    assert "sha256" in caplog.text
    assert camera.opened == []  # it stopped before touching the camera


def test_model_file_missing_refuses_to_start(camera, config_file, tmp_path, monkeypatch, caplog):
    models = tmp_path / "models"
    shutil.copytree(default_models_dir(), models, ignore=shutil.ignore_patterns(".build", "*.py", "*.md"))
    victim = next(models.glob("*.tflite"))
    victim.unlink()
    monkeypatch.setenv("EXPRESSION_PORTRAIT_MODELS", str(models))

    code = make_daemon(config_file).run()

    assert code == EXIT_MODELS
    assert victim.name in caplog.text
    assert not (tmp_path / "control.sock").exists()


class FlakySink(OffscreenSink):
    """A screen that is unplugged until ``plugged`` is set."""

    plugged = threading.Event()
    opens = 0

    def open(self):
        type(self).opens += 1
        if not self.plugged.is_set():
            raise DisplayError("cannot open the kmsdrm display (no connected screen)")
        return super().open()


def test_display_absent_keeps_running_and_retries(camera, config_file, notify_socket, caplog, monkeypatch):
    FlakySink.plugged.clear()
    FlakySink.opens = 0
    daemon = make_daemon(config_file, notify_socket[0])
    daemon.display_retry_s = 0.4
    monkeypatch.setattr(daemon, "_make_sink", lambda: FlakySink((1280, 720)))
    seen = {}

    def scenario(d):
        seen["absent"] = wait_for(lambda: status(d)["display"]["state"] == "absent" and status(d), what="absent")
        wait_for(lambda: FlakySink.opens >= 3, what="retries")
        seen["logged"] = caplog.text.count("display unavailable")
        FlakySink.plugged.set()
        seen["back"] = wait_for(lambda: status(d)["display"]["state"] == "ok" and status(d), what="display back")

    with caplog.at_level(logging.INFO):
        assert run_scenario(daemon, scenario) == 0
    messages = []
    try:
        while True:
            messages.append(notify_socket[1].recv(4096).decode())
    except TimeoutError:
        pass

    assert "no connected screen" in seen["absent"]["display"]["error"]
    assert seen["absent"]["camera"]["state"] == "ok"
    assert seen["logged"] == 1
    assert seen["back"]["healthy"] or seen["back"]["display"]["state"] == "ok"
    assert any(m.startswith("READY=1") and "display absent" in m for m in messages)


def test_gpio_unavailable_falls_back_to_keyboard(camera, config_file, monkeypatch, caplog):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    from gpiozero import Device

    monkeypatch.setattr(Device, "pin_factory", None)
    daemon = make_daemon(config_file)
    seen = {}

    def scenario(d):
        seen["status"] = status(d)

    assert run_scenario(daemon, scenario) == 0
    assert seen["status"]["buttons"]["gpio"].startswith("unavailable")
    assert seen["status"]["buttons"]["keyboard"] is True
    assert seen["status"]["state"] == "running"
    assert "only the keyboard works" in caplog.text


def test_gpio_buttons_reach_the_monitor(camera, config_file):
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    previous = Device.pin_factory
    Device.pin_factory = MockFactory()
    daemon = make_daemon(config_file)
    events = []

    def scenario(d):
        stream = control.stream_events("buttons", path=d.control.path)
        events.append(next(stream))
        pin = Device.pin_factory.pin(d.config.buttons.next_pin)
        pin.drive_low()
        pin.drive_high()
        events.append(next(stream))
        stream.close()

    try:
        assert run_scenario(daemon, scenario) == 0
    finally:
        Device.pin_factory.reset()
        Device.pin_factory = previous
    assert events[0]["buttons"]["gpio"].startswith("ok")
    assert events[1]["button"] == "next"


def test_sighup_reloads_and_rejects_invalid(camera, config_file, caplog):
    daemon = make_daemon(config_file)
    seen = {}

    def scenario(d):
        config_file.write_text(config_file.read_text().replace("no_frame_seconds = 30.0", "no_frame_seconds = 20.0"))
        os.kill(os.getpid(), signal.SIGHUP)
        wait_for(lambda: d.config.flow.no_frame_seconds == 20.0, what="reload")
        seen["kiosk_setting"] = d.kiosk.flow_settings.no_frame_seconds
        good = config_file.read_text()
        config_file.write_text(good.replace("fps = 15.0", "fsp = 15.0"))
        os.kill(os.getpid(), signal.SIGHUP)
        seen["rejected"] = wait_for(lambda: any(e["kind"] == "reload" for e in status(d)["last_errors"]) and status(d))
        seen["still"] = d.config.flow.no_frame_seconds
        seen["display"] = status(d)["display"]["state"]

    assert run_scenario(daemon, scenario) == 0
    assert seen["kiosk_setting"] == 20.0
    assert seen["still"] == 20.0
    assert seen["display"] == "ok"
    message = next(e["message"] for e in seen["rejected"]["last_errors"] if e["kind"] == "reload")
    assert "did you mean 'fps'?" in message


def test_screenshot_needs_blur_during_session(camera, config_file):
    daemon = make_daemon(config_file)
    seen = {}

    def scenario(d):
        wait_for(lambda: status(d)["kiosk"]["faces"] > 0, timeout=30, what="a face in view")
        with pytest.raises(control.ControlError, match="a visitor is being analysed") as refused:
            control.request("screenshot", path=d.control.path, blur_faces=False)
        seen["refused"] = str(refused.value)
        seen["blurred"] = control.request("screenshot", path=d.control.path, blur_faces=True)

    assert run_scenario(daemon, scenario) == 0
    import base64

    png = base64.b64decode(seen["blurred"]["png_base64"])
    assert png.startswith(b"\x89PNG")
    assert seen["blurred"]["blurred"] is True


def test_sigterm_closes_camera_quickly(camera, config_file):
    daemon = make_daemon(config_file)
    timing = {}

    def scenario(d):
        wait_for(lambda: status(d)["counts"]["frames"] > 3)
        timing["sent"] = time.monotonic()

    code = run_scenario(daemon, scenario)
    stopped = time.monotonic() - timing["sent"]

    assert code == 0
    assert stopped < 5.0
    assert camera.open_cameras == []
    assert not Path(daemon.config.control.socket).exists()


def test_invalid_config_exits_78(tmp_path, caplog):
    from expression_portrait.daemon import run_daemon

    bad = tmp_path / "config.toml"
    bad.write_text("[camera]\nfps = 500.0\n")

    code = run_daemon(str(bad), replay=None, display="headless")

    assert code == 78
    assert "[camera] fps = 500.0" in caplog.text
