"""The technician commands: status text, logs, buttons and selftest."""

from __future__ import annotations

import argparse
import json

import pytest

import fake_picamera2
from expression_portrait import cli, decode, media
from expression_portrait.commands import logs as logs_command
from expression_portrait.commands.status import format_status
from expression_portrait.control import ControlServer
from expression_portrait.errors import ExpressionPortraitError
from fake_picamera2 import FakeCameraSystem

STATUS = {
    "healthy": False, "state": "running", "version": "0.1.0", "pid": 4242, "uptime_s": 93784.0, "fps": 14.8,
    "kiosk": {"state": "out_of_order", "out_of_order": "camera busy", "display_fps": 15.0, "analysis_fps": 6.1},
    "latency_ms": {"detect": {"p50_ms": 9.5, "p95_ms": 14.0, "count": 10}},
    "counts": {"frames": 100, "analyses": 40, "sessions": 3, "errors": {"camera_busy": 2}},
    "camera": {"state": "busy", "source": "camera:0", "model": "imx708", "message": "camera is busy",
               "next_retry_in_s": 4.0},
    "display": {"state": "ok", "mode": "kmsdrm", "error": "", "last_render_age_s": 0.03},
    "buttons": {"gpio": "unavailable: no lgpio", "keyboard": True},
    "runtime": "ai-edge-litert 2.3.0",
    "models": [{"name": "emotion", "file": "emotion_int8.tflite", "task": "classification", "sha256": "ab" * 32}],
    "health": {"cpu_temperature_c": 71.5, "throttling": {"under_voltage": True, "under_voltage_occurred": True,
                                                         "throttled": False, "throttled_occurred": True}},
    "memory": {"rss_mib": 210.5, "available_mib": 3000.0, "total_mib": 3800.0},
    "last_errors": [{"time": 1_700_000_000, "kind": "camera_busy", "message": "camera is busy"}],
}


def test_status_text_names_every_part():
    text = format_status(STATUS)

    assert "healthy:      NO" in text
    assert "screen out_of_order (camera busy)" in text
    assert "uptime:       1d 02:03:04" in text
    assert "camera:       busy - camera:0 imx708; camera is busy; next retry in 4.0 s" in text
    assert "buttons:      GPIO unavailable: no lgpio; keyboard on" in text
    assert "detect p50 9.5 p95 14.0" in text
    assert "emotion_int8.tflite" in text
    assert "sha256 abababababababab" in text
    assert "temperature:  71.5 C" in text
    assert "throttling:   under_voltage; since boot: under_voltage, throttled" in text
    assert "camera_busy: camera is busy" in text


def test_status_command_exit_code_follows_health(tmp_path, capsys):
    server = ControlServer(tmp_path / "c.sock", {"status": lambda request: STATUS})
    server.start()
    try:
        unhealthy = cli.main(["status", "--socket", str(server.path)])
        shown = capsys.readouterr().out
        as_json = cli.main(["status", "--json", "--socket", str(server.path)])
        parsed = json.loads(capsys.readouterr().out)
    finally:
        server.stop()

    assert unhealthy == 1
    assert "healthy:      NO" in shown
    assert as_json == 1
    assert parsed["camera"]["state"] == "busy"


def test_status_without_daemon(tmp_path, capsys):
    code = cli.main(["status", "--socket", str(tmp_path / "none.sock")])

    assert code == 1
    assert "the kiosk daemon is not running" in capsys.readouterr().err


def test_status_json_without_daemon(tmp_path, capsys):
    code = cli.main(["status", "--json", "--socket", str(tmp_path / "none.sock")])
    output = capsys.readouterr()
    parsed = json.loads(output.out)

    assert code == 1
    assert parsed["running"] is False
    assert parsed["healthy"] is False
    assert "the kiosk daemon is not running" in parsed["error"]
    assert "the kiosk daemon is not running" in output.err


def test_buttons_monitor_prints_presses(tmp_path, capsys):
    def watch(request):
        yield {"button": None, "buttons": {"gpio": "ok (NEXT GPIO17)", "keyboard": True}}
        yield {"button": "next", "time": 1_700_000_000.0}
        yield {"button": "language", "time": 1_700_000_001.0}

    server = ControlServer(tmp_path / "c.sock", {"buttons": watch})
    server.start()
    try:
        code = cli.main(["buttons", "--socket", str(server.path), "--count", "2"])
    finally:
        server.stop()

    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[0].startswith("GPIO buttons: ok (NEXT GPIO17)")
    assert lines[1].endswith("NEXT")
    assert lines[2].endswith("LANGUAGE")


def test_screenshot_rejects_other_suffix(tmp_path, capsys):
    code = cli.main(["screenshot", str(tmp_path / "shot.jpg"), "--socket", str(tmp_path / "none.sock")])

    assert code == 1
    assert "ending in .png" in capsys.readouterr().err


def logs_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    logs_command.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_logs_builds_journalctl_command():
    command = logs_command.journalctl_command(logs_args("-f", "--since", "1 hour ago", "--errors",
                                                        "--field", "CAMERA_STATE=busy"))

    assert command[:3] == ["journalctl", "--unit", "expression-portrait.service"]
    assert "--follow" in command
    assert command[command.index("--since") + 1] == "1 hour ago"
    assert command[command.index("--priority") + 1] == "warning"
    assert command[-1] == "CAMERA_STATE=busy"


def test_logs_rejects_bad_field():
    with pytest.raises(ExpressionPortraitError, match="upper-case journal field"):
        logs_command.journalctl_command(logs_args("--field", "camera"))


@pytest.fixture
def camera(monkeypatch) -> FakeCameraSystem:
    frames = list(decode.iter_video_frames(media.path("single_face.mp4"), max_frames=4))
    world = FakeCameraSystem(frames)
    fake_picamera2.install(monkeypatch, world)
    return world


def selftest_config(tmp_path) -> str:
    file = tmp_path / "config.toml"
    file.write_text('[display]\nsink = "window"\nwidth = 640\nheight = 360\n[models]\nnum_threads = 1\n')
    return str(file)


def test_selftest_without_daemon(tmp_path, camera, capsys):
    code = cli.main(["selftest", "--config", selftest_config(tmp_path), "--socket", str(tmp_path / "none.sock")])

    out = capsys.readouterr().out
    assert code == 0, out
    assert "ok    models:" in out
    assert "test photo: 1 face (emotion" in out
    assert "ok    camera: camera:0 imx708: one 1280x720 frame, 1 face(s) found" in out
    assert "ok    display:" in out
    assert "showed red, green, blue and white bars" in out
    assert "ok    buttons: GPIO17, GPIO27 and GPIO22 open, none stuck" in out
    assert camera.open_cameras == []


def test_selftest_without_gpio_gives_fix(tmp_path, monkeypatch, capsys, recwarn):
    import sys

    import gpiozero

    # No pin library loads, as on a laptop: each of gpiozero's default factories fails.
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(gpiozero.Device, "pin_factory", None)
    for library in ("lgpio", "rpigpio", "pigpio", "native"):
        monkeypatch.setitem(sys.modules, f"gpiozero.pins.{library}", None)

    code = cli.main(["selftest", "--config", selftest_config(tmp_path), "--socket", str(tmp_path / "none.sock"),
                     "--skip", "camera", "--skip", "display"])

    output = capsys.readouterr()
    assert code == 1
    assert "FAIL  buttons: no GPIO pin library could be loaded (lgpio: " in output.out
    assert "sudo apt install python3-lgpio" in output.out
    assert "--system-site-packages" in output.out
    assert "--skip buttons" in output.out
    assert "PinFactoryFallback" not in output.err
    assert not [w for w in recwarn if issubclass(w.category, gpiozero.exc.PinFactoryFallback)]


def test_selftest_reports_missing_camera(tmp_path, camera, capsys):
    camera.cameras = []

    code = cli.main(["selftest", "--config", selftest_config(tmp_path), "--socket", str(tmp_path / "none.sock"),
                     "--skip", "display"])

    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL  camera: camera:0: no camera at index 0" in out
    assert "skip  display: --skip" in out
    assert "selftest FAILED: camera" in out
