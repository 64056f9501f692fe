"""The kiosk: camera frames in, analysis in its own thread, the session flow, screens out.

``Kiosk`` wires a FrameSource, a vision Pipeline, the session ``Flow``, the
``Renderer`` and a display sink, plus button presses from any thread.

Threads. The display loop (the thread that calls ``run``) reads the newest
camera frame without waiting, draws at ``DisplaySettings.fps`` and never
waits on the analysis. A worker thread analyses the newest frame only: frames
that arrive while it is busy are dropped, never queued. During a capture the
worker also feeds each result to a ``CaptureAggregator``.

``lockstep=True`` is for recorded video only (the demo): there is no worker,
each step analyses its camera frame before drawing, and ``run`` does not pace
the loop, so with a simulated clock the same video gives the same screens and
verdict on any machine. The appliance never uses it, because the display
would then wait on inference.

What the daemon uses:

- ``Kiosk(source, pipeline, content=..., flow_settings=..., display_settings=...,
  sink=None, on_frame=None)``; ``content`` maps language codes to checked
  ``Content`` in the order of ``flow_settings.languages``.
- ``run(until=None)`` runs the display loop until ``stop()`` is called or
  ``until(kiosk)`` returns True, then releases the sink and the worker. The
  source is started and stopped by the caller.
- ``on_frame(camera_frame_arrived: bool)`` is called after every rendered
  frame, in the display thread; the daemon pings the systemd watchdog from it
  only when a camera frame arrived recently.
- ``press(Press)`` queues a button press from any thread.
- ``status() -> KioskStatus``: state, language, display and analysis fps,
  per-stage latency in ms, faces in view, last error, out-of-order reason.
- ``screenshot(blur_faces: bool) -> bytes`` returns the current screen as PNG.
  It raises PrivacyError while a visitor is analysed (a session is running or
  a face is in view) unless ``blur_faces`` is True, in which case every camera
  image on it is blurred beyond recognition.
- ``reload(content=None, settings=None)`` swaps the language files and/or the
  FlowSettings without closing the display; new content is checked to fit the
  screen first and a ContentError leaves the old content in place.
- ``out_of_order(reason, technician_hint)`` shows the out-of-order screen until
  ``clear_out_of_order()``. The kiosk also shows it by itself when no camera
  frame arrives for ``no_frame_seconds`` or the analysis fails
  ``max_pipeline_failures`` times in a row, and clears those itself on recovery.

``screenshot``, ``reload``, ``out_of_order`` and ``clear_out_of_order`` may be
called from any thread: while the loop runs they are carried out by the display
thread between two frames, and the caller waits for the result.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import Any

from expression_portrait.errors import ContentError, PrivacyError
from expression_portrait.sources import Frame, LatestFrameSlot
from expression_portrait.ui.buttons import GpioButtons, PressQueue, is_quit, key_press
from expression_portrait.ui.content import Content
from expression_portrait.ui.display import new_surface, png_bytes
from expression_portrait.ui.flow import SESSION_STATES, Flow, Press, State, observe
from expression_portrait.ui.layout import Fonts
from expression_portrait.ui.screens import ExtraHead, Renderer, View, check_fits, session_pages
from expression_portrait.ui.settings import SUPPORTED_RESOLUTIONS, DisplaySettings, FlowSettings

log = logging.getLogger(__name__)

CAMERA_REASON = "camera"
MODELS_REASON = "models"
CAPTURE_FRAMES = 5  # sharpest frames of the capture that are averaged into the verdict


@dataclass
class KioskStatus:
    """A snapshot of the running kiosk, for ``expression-portrait status``."""

    state: str
    language: str
    display_fps: float
    analysis_fps: float
    latency_ms: dict[str, float]
    faces: int
    camera_frames: int
    analysed_frames: int
    sessions: int
    last_error: str
    out_of_order: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Analysis:
    """The newest analysis result, shared between the worker and the display loop."""

    frame: Frame | None = None
    result: Any = None
    sequence: int = 0
    count: int = 0
    failures: int = 0
    error: str = ""
    fps: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)


class Kiosk:
    """One kiosk: see the module docstring for threads and the daemon's API."""

    def __init__(self, source: Any, pipeline: Any, *, content: dict[str, Content],
                 flow_settings: FlowSettings | None = None,
                 display_settings: DisplaySettings | None = None, sink: Any = None,
                 extra_heads: list[ExtraHead] | None = None,
                 on_frame: Callable[[bool], None] | None = None,
                 aggregator_factory: Callable[[], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, lockstep: bool = False) -> None:
        self.source = source
        self.pipeline = pipeline
        self.flow_settings = flow_settings or FlowSettings()
        self.display_settings = display_settings or DisplaySettings()
        self.extra_heads = list(extra_heads or [])
        self.on_frame = on_frame
        self._check_languages(content, self.flow_settings)
        self.content = content
        self._aggregator_factory = aggregator_factory or _default_aggregator
        self._clock = clock
        self.lockstep = lockstep

        self.flow = Flow(self.flow_settings, page_count=0, clock=clock, rng=rng)
        self.pages = session_pages(self._current_content(), self.extra_heads)
        self.flow.set_page_count(len(self.pages))
        self.presses = PressQueue()
        self.sink = sink
        self.renderer = Renderer(Fonts(self.display_settings.font_path))
        self.surface: Any = None  # the sink's pygame surface once the display is open

        self._analysis = _Analysis()
        self._lock = threading.Lock()
        self._slot = LatestFrameSlot()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._loop_thread: threading.Thread | None = None
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future]] = queue.SimpleQueue()
        self._aggregator: Any = None
        self._capturing = False
        self._display_frame: Frame | None = None
        self._last_camera_frame = clock()
        self._camera_frames = 0
        self._seen_sequence = 0
        self._display_fps = 0.0
        self._last_step: float | None = None
        self._last_analysed: float | None = None  # time.monotonic() of the last analysis
        settings = self.display_settings
        self._screen_size = (settings.width or 1920, settings.height or 1080)  # until the display opens
        self._auto_reason = ""
        self._manual_reason = ""
        self._previous_state = self.flow.state
        self._buttons: GpioButtons | None = None

    # -- the daemon's API -------------------------------------------------------------

    def press(self, button: Press) -> None:
        """Queue a button press; safe from any thread."""
        self.presses.put(button)

    def attach_buttons(self, buttons: GpioButtons) -> None:
        """Keep the GPIO buttons alive with the kiosk and close them when it stops."""
        self._buttons = buttons

    def status(self) -> KioskStatus:
        with self._lock:
            analysis = self._analysis
            faces = len(analysis.result.faces) if analysis.result is not None else 0
            return KioskStatus(
                state=self.flow.state.value,
                language=self.flow.language,
                display_fps=round(self._display_fps, 1),
                analysis_fps=round(analysis.fps, 1),
                latency_ms={k: round(v, 1) for k, v in analysis.latency_ms.items()},
                faces=faces,
                camera_frames=self._camera_frames,
                analysed_frames=analysis.count,
                sessions=self.flow.sessions,
                last_error=analysis.error,
                out_of_order=self.flow.out_of_order_reason,
            )

    def screenshot(self, blur_faces: bool) -> bytes:
        """Return the current screen as PNG bytes; see the module docstring for the privacy rule."""
        return self._in_loop(lambda: self._screenshot(blur_faces))

    def reload(self, content: dict[str, Content] | None = None,
               settings: FlowSettings | None = None) -> None:
        """Swap the language files and/or the flow settings without closing the display."""
        self._in_loop(lambda: self._reload(content, settings))

    def out_of_order(self, reason: str, technician_hint: str = "") -> None:
        """Show the out-of-order screen until clear_out_of_order is called."""
        def apply() -> None:
            self._manual_reason = reason
            self.flow.out_of_order(reason, technician_hint)
        self._in_loop(apply)

    def clear_out_of_order(self) -> None:
        """Leave an out-of-order screen set by out_of_order; automatic ones clear on recovery."""
        def apply() -> None:
            self._manual_reason = ""
            if not self._auto_reason:
                self.flow.clear_out_of_order()
        self._in_loop(apply)

    def stop(self) -> None:
        self._stop.set()
        self._slot.wake()

    # -- the display loop ----------------------------------------------------------------

    def run(self, until: Callable[[Kiosk], bool] | None = None) -> None:
        """Run the display loop until stop() or ``until(self)``; see the module docstring."""
        self._loop_thread = threading.current_thread()
        self._stop.clear()
        self._open()
        period = 1.0 / self.display_settings.fps
        try:
            next_due = time.monotonic()
            while not self._stop.is_set():
                self.step()
                if until is not None and until(self):
                    break
                if self.lockstep:
                    continue
                next_due += period
                delay = next_due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    next_due = time.monotonic()
        finally:
            self._close()

    def step(self) -> None:
        """Draw one frame: take the newest camera frame and result, advance the flow, render."""
        started = time.monotonic()
        if self._last_step is not None:
            rate = 1.0 / max(started - self._last_step, 1e-6)
            self._display_fps = rate if self._display_fps == 0 else 0.9 * self._display_fps + 0.1 * rate
        self._last_step = started
        self._run_calls()
        arrived = self._take_camera_frame()
        if self.lockstep and arrived:
            self._analyse(self._display_frame)
        self._feed_flow()
        self._render()
        if self.on_frame is not None:
            self.on_frame(arrived)

    def _open(self) -> None:
        if self.surface is None:
            if self.sink is None:
                from expression_portrait.ui.display import open_sink

                self.sink = open_sink(self.display_settings)
            self.surface = self.sink.open()
            self._screen_size = self.surface.get_size()
            self._check_fit(self.content)
        if self._worker is None and not self.lockstep:
            self._worker = threading.Thread(target=self._analyse_loop, name="kiosk-analysis",
                                            daemon=True)
            self._worker.start()

    def _close(self) -> None:
        self._stop.set()
        self._slot.wake()
        if self._worker is not None:
            self._worker.join(timeout=5)
            self._worker = None
        if self._buttons is not None:
            self._buttons.close()
            self._buttons = None
        if self.sink is not None:
            self.sink.close()
        self.surface = None  # a later run() opens the sink again
        self._loop_thread = None

    def _take_camera_frame(self) -> bool:
        now = self._clock()
        try:
            frame = self.source.read(0.0)
        except Exception as exc:  # a broken camera must not stop the screen
            self._record_error(f"camera: {exc}")
            frame = None
        if frame is not None:
            self._display_frame = frame
            self._last_camera_frame = now
            self._camera_frames += 1
            if not self.lockstep:
                self._slot.put(frame)
            if self._auto_reason == CAMERA_REASON:
                self._clear_auto()
        elif now - self._last_camera_frame >= self.flow_settings.no_frame_seconds:
            self._set_auto(CAMERA_REASON,
                           f"no camera frame for {self.flow_settings.no_frame_seconds:g} s: check "
                           "the camera cable, then run expression-portrait status and selftest")
        return frame is not None

    def _feed_flow(self) -> None:
        for event in self.sink.events() if self.sink is not None else []:
            if is_quit(event):
                self.stop()
            pressed = key_press(event)
            if pressed is not None:
                self.press(pressed)
        for pressed in self.presses.drain():
            self.flow.press(pressed)

        with self._lock:
            analysis = self._analysis
            new_result = analysis.sequence != self._seen_sequence
            self._seen_sequence = analysis.sequence
            result = analysis.result
            failures = analysis.failures
        if failures >= self.flow_settings.max_pipeline_failures:
            self._set_auto(MODELS_REASON,
                           f"face analysis failed {failures} times in a row ({analysis.error}); "
                           "run expression-portrait selftest")
        elif self._auto_reason == MODELS_REASON and failures == 0:
            self._clear_auto()
        if new_result and result is not None:
            self.flow.observe(observe(result, self.flow_settings))
        self.flow.tick()

        if self.flow.capture_due:
            with self._lock:
                self._capturing = False
                aggregator, self._aggregator = self._aggregator, None
            self.flow.finish_capture(aggregator.verdict() if aggregator is not None else None)
        self._on_state_change()

    def _on_state_change(self) -> None:
        state = self.flow.state
        if state == self._previous_state:
            return
        log.info("state %s -> %s", self._previous_state.value, state.value)
        if state == State.CAPTURE:
            with self._lock:
                self._aggregator = self._aggregator_factory()
                self._capturing = True
        elif self._previous_state == State.CAPTURE:
            with self._lock:
                self._capturing = False
                self._aggregator = None
        if state == State.ATTRACT and self._previous_state in SESSION_STATES:
            reset = getattr(self.pipeline, "reset", None)
            if reset is not None:
                reset()
        self._previous_state = state

    def _view(self, blur: bool = False) -> View:
        content = self._current_content()
        languages = self.flow_settings.languages
        next_code = languages[(self.flow.language_index + 1) % len(languages)]
        with self._lock:
            result = self._analysis.result
        frame = self._display_frame
        sitter_centred = False
        if result is not None and result.sitter is not None:
            sitter_centred = observe(result, self.flow_settings).centred
        return View(
            state=self.flow.state,
            content=content,
            next_language=self.content[next_code].name,
            frame=frame.display if frame is not None else None,
            result=result,
            analysis_size=result.frame_size if result is not None else None,
            target=self.flow.target,
            countdown=self.flow.countdown_number(),
            notice=self.flow.notice,
            verdict=self.flow.verdict,
            pages=self.pages,
            page=self.flow.page,
            reason=self.flow.out_of_order_reason,
            technician_hint=self.flow.technician_hint,
            mirror=self.display_settings.mirror,
            smooth=self.display_settings.smooth_scaling,
            blur=blur,
            sitter_centred=sitter_centred,
        )

    def screen_name(self) -> str:
        """Name the current screen: state, page, countdown number and language."""
        return screen_name(self._view())

    def _render(self) -> None:
        if self.surface is None:
            return
        # The name comes from the same view that is drawn: reading the flow's clock a second
        # time could cross a second boundary and name a countdown "3" screen showing "2".
        view = self._view()
        self.renderer.draw(view, self.surface)
        self.sink.present(screen_name(view))

    # -- the analysis worker ------------------------------------------------------------------

    def _analyse_loop(self) -> None:
        while not self._stop.is_set():
            frame = self._slot.take(timeout=0.5)
            if frame is not None:
                self._analyse(frame)

    def _analyse(self, frame: Frame) -> None:
        """Analyse one camera frame and publish the result; feed it to a running capture."""
        try:
            result = self.pipeline.analyze(frame.analysis)
        except Exception as exc:  # keep the screen alive; the flow shows out of order
            log.exception("face analysis failed on frame %d", frame.sequence)
            with self._lock:
                self._analysis.failures += 1
                self._analysis.error = f"analysis: {exc}"
            return
        now = time.monotonic()
        with self._lock:
            analysis = self._analysis
            analysis.frame = frame
            analysis.result = result
            analysis.sequence += 1
            analysis.count += 1
            analysis.failures = 0
            analysis.latency_ms = dict(result.timings_ms)
            if self._last_analysed is not None:
                rate = 1.0 / max(now - self._last_analysed, 1e-6)
                analysis.fps = rate if analysis.fps == 0 else 0.8 * analysis.fps + 0.2 * rate
            if self._capturing and self._aggregator is not None:
                self._aggregator.add(result, frame.analysis)
        self._last_analysed = now

    # -- helpers -------------------------------------------------------------------------------

    def _current_content(self) -> Content:
        return self.content[self.flow.language]

    def _record_error(self, message: str) -> None:
        with self._lock:
            if self._analysis.error != message:
                log.error("%s", message)
            self._analysis.error = message

    def _set_auto(self, reason: str, hint: str) -> None:
        if self._auto_reason == reason or self._manual_reason:
            return
        log.error("out of order: %s (%s)", reason, hint)
        self._auto_reason = reason
        self.flow.out_of_order(reason, hint)

    def _clear_auto(self) -> None:
        log.info("recovered from %s", self._auto_reason)
        self._auto_reason = ""
        if not self._manual_reason:
            self.flow.clear_out_of_order()

    def _in_loop(self, call: Callable[[], Any]) -> Any:
        loop = self._loop_thread
        if loop is None or loop is threading.current_thread() or self._stop.is_set():
            return call()
        future: Future = Future()
        self._calls.put((call, future))
        return future.result(timeout=10)

    def _run_calls(self) -> None:
        while True:
            try:
                call, future = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                future.set_result(call())
            except Exception as exc:  # handed back to the calling thread
                future.set_exception(exc)

    def _screenshot(self, blur_faces: bool) -> bytes:
        with self._lock:
            result = self._analysis.result
        faces_in_view = result is not None and len(result.faces) > 0
        if not blur_faces and (self.flow.in_session or faces_in_view):
            raise PrivacyError(
                "a visitor is being analysed; take the screenshot with faces blurred, or wait "
                "until nobody is in front of the camera"
            )
        surface = new_surface(self._screen_size)
        self.renderer.draw(self._view(blur=blur_faces), surface)
        return png_bytes(surface)

    def _reload(self, content: dict[str, Content] | None, settings: FlowSettings | None) -> None:
        new_settings = settings or self.flow_settings
        new_content = content or self.content
        self._check_languages(new_content, new_settings)
        self._check_fit(new_content)
        self.content = new_content
        if settings is not None:
            self.flow_settings = settings
            self.flow.settings = settings
            if self.flow.language_index >= len(settings.languages):
                self.flow.language_index = 0
        self.pages = session_pages(self._current_content(), self.extra_heads)
        self.flow.set_page_count(len(self.pages))
        log.info("content and settings reloaded: languages %s", ", ".join(self.content))

    def _check_fit(self, content: dict[str, Content]) -> None:
        """Raise ContentError unless every screen fits this kiosk's screen in every language."""
        settings = self.display_settings
        if self.surface is not None:
            size = self.surface.get_size()
        elif settings.width is not None and settings.height is not None:
            size = (settings.width, settings.height)
        else:
            size = None
        if size in SUPPORTED_RESOLUTIONS:
            sizes = [size]
        else:
            # A screen that fell back to another mode (1024x768 after a TV power cycle is
            # common) still runs; its text is clipped where it does not fit.
            if size is not None:
                log.warning("screen is %dx%d, not one of the sizes content is checked for; "
                            "text may be cut off", *size)
            sizes = list(SUPPORTED_RESOLUTIONS)
        codes = list(content)
        for index, code in enumerate(codes):
            next_name = content[codes[(index + 1) % len(codes)]].name
            check_fits(content[code], self.extra_heads, sizes=sizes, fonts=self.renderer.fonts,
                       next_language=next_name)

    @staticmethod
    def _check_languages(content: dict[str, Content], settings: FlowSettings) -> None:
        missing = [code for code in settings.languages if code not in content]
        if missing:
            raise ContentError(
                f"no content loaded for language {missing[0]!r}; add {missing[0]}.toml or remove "
                "it from the flow's languages"
            )


def screen_name(view: View) -> str:
    """Name the screen ``view`` draws: state, page, countdown number, notice and language."""
    name = view.state.value
    if view.state == State.COUNTDOWN:
        name += f"-{view.countdown}"
    elif view.state == State.EXPLANATIONS and view.pages:
        name += f"-{view.page + 1:02d}-{view.pages[view.page].id.replace(':', '-')}"
    if view.notice is not None:
        name += f"-{view.notice.value}"
    return f"{name}-{view.content.language}"


def _default_aggregator() -> Any:
    from expression_portrait.vision.aggregate import CaptureAggregator

    return CaptureAggregator(CAPTURE_FRAMES)
