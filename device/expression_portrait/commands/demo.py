"""``expression-portrait demo``: the real kiosk on a recorded video, headless, saving every screen.

The demo runs the same Kiosk as the appliance, with the real models, pipeline,
session flow and renderer, on a packaged public test video instead of the
camera. A script presses the buttons: it waits for the verdict, pages through
every explanation page, shows the verdict and first page in the second
language, switches back and ends on the out-of-order screen. Each distinct
screen is saved as a PNG, plus one contact sheet of them all, in the output
folder (./demo-output by default).

The demo runs on a simulated clock, not in real time: each display frame
advances the clock by 1/DEMO_FPS seconds, shows the video frame due at that
time and analyses it before drawing (the kiosk's lockstep mode). So the same
video and seed give the same screens and verdict on any machine, however
loaded; only the wall time differs.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from expression_portrait import decode
from expression_portrait.errors import ConfigError, DecodeError, ExpressionPortraitError

log = logging.getLogger(__name__)

DEFAULT_VIDEO = "WolfgangLanger_Pexels.mp4"
DEFAULT_OUTPUT = Path("demo-output")
CONTACT_SHEET = "contact-sheet.png"
DEMO_FPS = 15  # display frames per simulated second; each one is analysed


class DemoError(ExpressionPortraitError):
    """The demo did not reach the verdict in time."""

    exit_code = 3


@dataclass
class DemoResult:
    output_dir: Path
    screens: list[Path]
    contact_sheet: Path
    verdict: Any
    target: str
    seconds: float


@dataclass
class DemoScript:
    """Simulated button presses, driven by what is on the screen; used as ``Kiosk.run``'s until.

    ``clock`` is the kiosk's clock, and ``timeout`` and the holds are in its seconds.
    """

    timeout: float
    clock: Callable[[], float] = time.monotonic
    verdict_hold: float = 2.0
    page_hold: float = 1.0
    stop_at_verdict: bool = False  # end as soon as the verdict screen shows
    started: float | None = None
    verdict: Any = None
    target: str = ""
    finished: bool = False
    _step: str = "wait_verdict"
    _since: float = 0.0
    _pages_seen: int = 0

    def __call__(self, kiosk: Any) -> bool:
        from expression_portrait.ui.flow import Press, State

        now = self.clock()
        if self.started is None:
            self.started = now
        flow = kiosk.flow
        if now - self.started > self.timeout:
            return True
        if self._step == "wait_verdict":
            if flow.state == State.VERDICT:
                self.verdict, self.target = flow.verdict, flow.target
                self._next("read_verdict", now)
                if self.stop_at_verdict:
                    self.finished = True
                    return True
        elif self._step == "read_verdict" and now - self._since >= self.verdict_hold:
            kiosk.press(Press.NEXT)
            self._next("pages", now)
        elif self._step == "pages" and now - self._since >= self.page_hold:
            kiosk.press(Press.NEXT)
            self._pages_seen += 1
            if self._pages_seen >= len(kiosk.pages):
                self._next("other_language", now)
            else:
                self._since = now
        elif self._step == "other_language" and now - self._since >= self.page_hold:
            kiosk.press(Press.LANGUAGE)
            self._next("other_language_page", now)
        elif self._step == "other_language_page" and now - self._since >= self.page_hold:
            kiosk.press(Press.NEXT)
            self._next("first_language", now)
        elif self._step == "first_language" and now - self._since >= self.page_hold:
            kiosk.press(Press.LANGUAGE)
            self._next("out_of_order", now)
        elif self._step == "out_of_order" and now - self._since >= self.page_hold:
            kiosk.out_of_order("demo", "This screen appears when the camera or the models fail; "
                                       "the reason and a hint for the technician go here.")
            self._next("done", now)
        elif self._step == "done" and now - self._since >= self.page_hold:
            self.finished = True
            return True
        return False

    def _next(self, step: str, now: float) -> None:
        self._step = step
        self._since = now


class SimulatedClock:
    """A monotonic clock that moves only when ``advance`` is called."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SteppedVideoSource:
    """A FrameSource that returns, on each read, the video frame due at ``clock()``.

    Frame ``n`` of the video is due at ``n / fps`` seconds of the clock, and the
    video loops. Frames between two reads are skipped, as a camera's would be,
    but which ones depends only on the clock, never on how fast this machine is.
    The whole video is decoded into memory first (the packaged ones are short).
    """

    def __init__(self, path: Path, clock: SimulatedClock, analysis_width: int = 640) -> None:
        from expression_portrait.sources import downscale

        self.name = f"stepped:{path.name}"
        self.path = path
        self.error: Exception | None = None
        self._clock = clock
        self._started_at = 0.0
        self._frames: list[tuple[np.ndarray, np.ndarray]] = []
        self._last_index = -1
        try:
            self._interval = _frame_interval(path)
            for image in decode.iter_video_frames(path):
                image.setflags(write=False)
                self._frames.append((image, downscale(image, analysis_width)))
        except DecodeError as exc:
            self.error = exc
        if not self._frames and self.error is None:
            self.error = DecodeError(f"{path}: contains no video frames")

    def start(self) -> None:
        self._started_at = self._clock()
        self._last_index = -1

    def read(self, timeout: float) -> Any:
        """Return the frame due now, or None if it was already returned; ``timeout`` is unused."""
        from expression_portrait.sources import Frame

        if self.error is not None:
            return None
        index = int((self._clock() - self._started_at) / self._interval + 1e-9)
        if index == self._last_index:
            return None
        self._last_index = index
        display, analysis = self._frames[index % len(self._frames)]
        return Frame(display, analysis, index, self._clock())

    def stop(self) -> None:
        pass

    def __enter__(self) -> SteppedVideoSource:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _frame_interval(path: Path) -> float:
    """Return the seconds between two frames of the video at ``path`` (1/25 if it states no rate)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DecodeError(f"{path}: contains no video stream")
            rate = container.streams.video[0].average_rate
    except (av.FFmpegError, OSError) as exc:
        raise DecodeError(f"{path}: not a readable video ({exc})") from exc
    return 1.0 / float(rate) if rate else 1.0 / 25


class SizeError(ConfigError, argparse.ArgumentTypeError):
    """An invalid --size; argparse prints the message of an ArgumentTypeError as it is."""


def parse_size(text: str) -> tuple[int, int]:
    """Parse WIDTHxHEIGHT within the limits of [display] width (320..7680) and height (240..7680)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError as exc:
        raise SizeError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 1920x1080") from exc
    if not (320 <= width <= 7680 and 240 <= height <= 7680):
        raise SizeError(
            f"size {text!r} is out of range: width must be 320 to 7680 and height 240 to 7680 pixels")
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", default=DEFAULT_VIDEO,
                        help=f"a packaged test video by name, or a video file (default {DEFAULT_VIDEO})")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="folder for the screen PNGs and the contact sheet (default ./demo-output)")
    parser.add_argument("--size", default="1920x1080", type=parse_size,
                        help="screen size in pixels, WIDTHxHEIGHT (default 1920x1080)")
    parser.add_argument("--seed", type=int, default=5, help="seed of the prompt draw (default 5)")
    parser.add_argument("--timeout", type=float, default=100.0,
                        help="give up after this many seconds of video time (default 100)")
    parser.add_argument("--models", type=Path, default=None,
                        help="models folder (default: models_tflite beside the package)")


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0:
        raise ConfigError(f"--timeout must be more than 0 seconds, got {args.timeout:g}")
    result = run_demo(args.output, video=args.video, size=args.size, seed=args.seed,
                      timeout=args.timeout, models_dir=args.models)
    print(verdict_summary(result))
    print(f"screens: {result.output_dir.resolve()}")
    print(f"contact sheet: {result.contact_sheet.resolve()}")
    return 0


def verdict_summary(result: DemoResult) -> str:
    """Describe the verdict in the first language's words, e.g. "asked for sadness; ..."."""
    from expression_portrait.ui.content import load_languages
    from expression_portrait.ui.settings import FlowSettings

    language = FlowSettings().languages[0]
    content = load_languages([language])[language]
    emotion = result.verdict.heads.get("emotion")
    if emotion is None:
        seen = "nothing (no emotion model)"
    else:
        label, probability = emotion.top
        seen = f"{content.emotion(label)} ({content.text('percent', value=round(100 * probability))})"
    return (f"asked for {content.emotion(result.target)}; the machine saw {seen}; "
            f"{len(result.screens)} screens in {result.seconds:.0f} s")


def _video_path(video: str) -> Path:
    from expression_portrait import media

    if video in media.FILES:
        return Path(media.path(video))
    path = Path(video)
    if not path.is_file():
        raise ConfigError(f"video {video!r} is neither a packaged test video "
                          f"({', '.join(n for n, f in media.FILES.items() if f.kind == 'video')}) "
                          "nor a file")
    try:
        decode.load_frames(path, max_frames=1)  # fail now rather than after the timeout
    except DecodeError as exc:
        raise ConfigError(f"video {video!r} cannot be replayed: {exc}") from exc
    return path


def _clear_old_screens(output: Path) -> None:
    for old in output.glob("[0-9][0-9]-*.png"):
        old.unlink()
    (output / CONTACT_SHEET).unlink(missing_ok=True)


def run_demo(output: Path, *, video: str = DEFAULT_VIDEO, size: tuple[int, int] = (1920, 1080),
             seed: int = 5, timeout: float = 100.0, models_dir: Path | None = None,
             contact_sheet: bool = True, stop_at_verdict: bool = False) -> DemoResult:
    """Run the kiosk headless on ``video`` with scripted presses; return what it showed.

    ``stop_at_verdict`` ends the run at the verdict screen, before the pages.
    """
    from expression_portrait.kiosk import Kiosk
    from expression_portrait.ui.content import load_languages
    from expression_portrait.ui.display import HeadlessSink
    from expression_portrait.ui.screens import extra_heads_from_manifest
    from expression_portrait.ui.settings import DisplaySettings, FlowSettings
    from expression_portrait.vision.pipeline import Pipeline

    started = time.monotonic()
    video_path = _video_path(video)
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file; give a folder for the screen PNGs")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--output {output}: cannot create the folder: {exc.strerror}") from exc
    _clear_old_screens(output)

    pipeline = Pipeline.from_manifest(models_dir)
    # The script turns the pages, and a hand passing over the video's face should not
    # cancel the countdown, so the idle timers are long and the grace for a lost face too.
    flow_settings = FlowSettings(verdict_seconds=60, page_seconds=60, lost_grace_seconds=1.5)
    display_settings = DisplaySettings(sink="headless", output_dir=output, width=size[0],
                                       height=size[1], fps=DEMO_FPS, smooth_scaling=True)
    content = load_languages(flow_settings.languages)
    sink = HeadlessSink(output, size, unique=True)
    clock = SimulatedClock()
    script = DemoScript(timeout=timeout, clock=clock, stop_at_verdict=stop_at_verdict)
    source = SteppedVideoSource(video_path, clock)
    if source.error is not None:
        raise ConfigError(f"video {video!r} cannot be replayed: {source.error}")
    kiosk = Kiosk(source, pipeline,
                  content=content, flow_settings=flow_settings, display_settings=display_settings,
                  sink=sink, extra_heads=extra_heads_from_manifest(pipeline.manifest),
                  clock=clock, rng=random.Random(seed), lockstep=True)

    def until(running: Kiosk) -> bool:
        done = script(running)
        clock.advance(1.0 / DEMO_FPS)
        return done

    source.start()
    try:
        kiosk.run(until=until)
    finally:
        source.stop()

    if script.verdict is None:
        raise DemoError(
            f"no verdict within {timeout:g} s of video time (last screen: {kiosk.screen_name()}); "
            "the video may show no steady, centred face"
        )
    if sink.errors:
        raise DemoError(f"{len(sink.errors)} screens could not be saved, first: {sink.errors[0]}")
    sheet = output / CONTACT_SHEET
    if contact_sheet:
        make_contact_sheet(sink.written, sheet)
    return DemoResult(output, list(sink.written), sheet, script.verdict, script.target,
                      time.monotonic() - started)


def make_contact_sheet(paths: list[Path], destination: Path, columns: int = 4,
                       thumb_width: int = 480) -> Path:
    """Save every screen as a captioned thumbnail on one image."""
    from PIL import Image, ImageDraw

    if not paths:
        raise DemoError("no screens were saved, so there is nothing for the contact sheet")
    thumbs = []
    for path in paths:
        with Image.open(path) as image:
            scale = thumb_width / image.width
            thumbs.append((path.stem, image.convert("RGB").resize(
                (thumb_width, round(image.height * scale)), Image.Resampling.LANCZOS)))
    cell_h = max(t.height for _, t in thumbs) + 28
    rows = (len(thumbs) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * (thumb_width + 12) + 12, rows * (cell_h + 12) + 12), (30, 30, 30))
    draw = ImageDraw.Draw(sheet)
    for index, (name, thumb) in enumerate(thumbs):
        row, col = divmod(index, columns)
        x, y = 12 + col * (thumb_width + 12), 12 + row * (cell_h + 12)
        sheet.paste(thumb, (x, y))
        draw.text((x, y + thumb.height + 6), name, fill=(220, 220, 220))
    sheet.save(destination)
    return destination
