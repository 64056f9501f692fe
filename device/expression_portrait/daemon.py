"""The kiosk as a systemd service: start, run for months, recover, reload and stop cleanly.

``Daemon.start()`` brings the parts up in order and ``stop()`` takes them down
in reverse. The kiosk's display loop runs in the main thread, which is also
where signals arrive. After every drawn screen the kiosk calls the daemon's
``_after_render`` hook, which pings the watchdog, puts a camera fault on
screen and carries out a reload requested by SIGHUP. Other threads (the camera
supervisor, the control socket) only set flags for that hook or use the
kiosk's own thread-safe calls, so pygame is touched from the main thread only.

Faults and what the visitor and the technician see:

- Camera missing, busy or stalled: the OUT OF ORDER screen, the camera is
  reopened with backoff (``supervise.SupervisedSource``), status shows it, and
  the process stays up.
- Model file missing or its sha256 differs from the manifest: the daemon does
  not start and exits with EXIT_MODELS (65), which ``systemctl status`` shows.
- Display absent or unplugged: the daemon keeps running without a screen,
  retries the display every ``DISPLAY_RETRY_S`` and logs that once.
- GPIO unavailable: the keyboard only, with one warning.
- SIGTERM: STOPPING=1, the kiosk loop ends and the camera is closed within a
  few seconds. SIGHUP: the config file and content are read again; an invalid
  file is logged and the running config stays.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from expression_portrait import __version__
from expression_portrait.camera import PicameraSource
from expression_portrait.config import EXIT_CONFIG, Config, LoadedConfig, load_config
from expression_portrait.control import ControlServer
from expression_portrait.errors import (
    ConfigError,
    ContentError,
    ControlError,
    DisplayError,
    ExpressionPortraitError,
    ModelError,
)
from expression_portrait.logs import log_system_info, setup_logging
from expression_portrait.metrics import Metrics, read_health, write_textfile
from expression_portrait.notify import Notifier, Watchdog, watchdog_interval
from expression_portrait.sources import FrameSource, ReplaySource
from expression_portrait.supervise import OK, SupervisedSource

log = logging.getLogger(__name__)

# sysexits.h EX_DATAERR: a model file is missing or corrupt. systemd shows status=65/DATAERR.
EXIT_MODELS = 65
EXIT_OK = 0
DISPLAY_RETRY_S = 10.0
STATUS_EVERY_S = 5.0
LAST_ERRORS = 20


class OffscreenSink:
    """A display sink with no screen and no files: frames are drawn into memory and dropped.

    ``run --display headless`` uses it, so a headless kiosk never writes a
    visitor's picture anywhere (the demo's PNG-writing sink is a different one).
    """

    name = "headless"

    def __init__(self, size: tuple[int, int] = (1920, 1080)) -> None:
        self.size = size
        self.surface = None

    def open(self):
        import pygame

        self.surface = pygame.Surface(self.size)
        return self.surface

    def present(self, screen: str) -> None:
        pass

    def events(self) -> list:
        return []

    def close(self) -> None:
        self.surface = None


class Daemon:
    """The running kiosk service and everything around it."""

    def __init__(self, loaded: LoadedConfig, *, replay: str | os.PathLike[str] | None = None,
                 display: str | None = None, notifier: Notifier | None = None, verbose: int = 0,
                 kiosk_factory: Callable[..., Any] | None = None,
                 pipeline_factory: Callable[[Config], Any] | None = None,
                 camera_factory: Callable[[Config], FrameSource] | None = None) -> None:
        self.config = loaded.config
        self.config_path = loaded.path
        self.replay = Path(replay) if replay else None
        self.display_override = display
        self.verbose = verbose
        self.notifier = notifier or Notifier()
        self.watchdog = Watchdog(self.notifier, watchdog_interval())
        self.metrics = Metrics()
        self.kiosk_factory = kiosk_factory or build_kiosk
        self.pipeline_factory = pipeline_factory or _real_pipeline
        self.camera_factory = camera_factory or self._camera
        self.state = "starting"
        self.started_at = time.monotonic()
        self.errors: deque[dict[str, Any]] = deque(maxlen=LAST_ERRORS)
        self.pipeline: Any = None
        self.source: SupervisedSource | None = None
        self.kiosk: Any = None
        self.control: ControlServer | None = None
        self.display_state = "not started"
        self.display_error = ""
        self.display_retry_s = DISPLAY_RETRY_S
        self.buttons: Any = None
        self.buttons_state = {"gpio": "not started", "keyboard": self.config.buttons.keyboard}
        self._camera_fault: tuple[str, str] | None = None  # wanted on screen, set by the supervisor
        self._shown_fault: tuple[str, str] | None = None  # shown on screen, by the main thread
        self._latest_frame: Any = None
        self.ready_sent = False
        self._stop = threading.Event()
        self._reload_requested = threading.Event()
        self._last_status_at = 0.0
        self._last_render_at: float | None = None
        self._metrics_thread: threading.Thread | None = None
        self._button_listeners: list[queue.SimpleQueue] = []
        self._old_handlers: dict[int, Any] = {}

    # Start and stop, in this order and in reverse.

    def start(self) -> None:
        self.start_signals()
        self.start_logging()
        self.start_models()
        self.start_metrics()
        self.start_camera()
        self.start_kiosk()
        self.start_buttons()
        self.start_control()

    def stop(self) -> None:
        self.state = "stopping"
        self.stop_control()
        self.stop_buttons()
        self.stop_kiosk()
        self.stop_camera()
        self.stop_metrics()
        log.info("expression-portrait stopped")
        self.stop_signals()

    def start_logging(self) -> None:
        setup_logging(self.config.logging, verbose=self.verbose)
        log.info("expression-portrait %s starting (config: %s)", __version__,
                 self.config_path or "built-in defaults")
        log_system_info(log, [("runtime", _runtime_name()), ("config", str(self.config_path or "defaults")),
                              ("camera", self._camera_label()), ("display", self._display_mode()),
                              *_model_files(self.config)])

    def start_models(self) -> None:
        """Load and verify every model; a missing or altered file stops the start (ModelError)."""
        self.notifier.status("loading models")
        self.pipeline = InstrumentedPipeline(self.pipeline_factory(self.config), self.metrics)

    def start_metrics(self) -> None:
        settings = self.config.metrics
        if not settings.enabled:
            return
        if not Path(settings.directory).is_dir():
            log.warning("metrics folder %s does not exist; no Prometheus textfile will be written "
                        "(install prometheus-node-exporter or set [metrics] directory)", settings.directory)
            return
        self._metrics_thread = threading.Thread(target=self._write_metrics_loop, name="metrics", daemon=True)
        self._metrics_thread.start()

    def start_camera(self) -> None:
        settings = self.config.camera
        self.source = SupervisedSource(
            lambda: self.camera_factory(self.config), stall_timeout=settings.stall_timeout_s,
            retry_initial=settings.retry_initial_s, retry_max=settings.retry_max_s,
            on_change=self._camera_changed, on_frame=self._frame_arrived,
            on_recovering=self.watchdog.recovering)
        self.source.start()

    def start_kiosk(self) -> None:
        """Build the kiosk with its content and display sink; the display opens when it runs."""
        self.kiosk = self.kiosk_factory(self.config, self.source, self.pipeline, self._make_sink(),
                                        on_frame=self._after_render)
        self._shown_fault = None

    def start_buttons(self) -> None:
        """Attach the GPIO buttons; without GPIO the kiosk carries on with the keyboard only."""
        settings = self.config.buttons
        if not settings.enabled:
            self.buttons_state = {"gpio": "disabled in config", "keyboard": settings.keyboard}
            return
        from expression_portrait.ui.buttons import GpioButtons

        try:
            self.buttons = GpioButtons(settings, self._button_pressed)
        except Exception as exc:  # gpiozero raises BadPinFactory, GPIOPinInUse, OSError ...
            self.buttons_state = {"gpio": f"unavailable: {exc}", "keyboard": settings.keyboard}
            self._record_error("gpio", f"GPIO buttons unavailable ({type(exc).__name__}: {exc}); "
                               "only the keyboard works; check the gpio group and that lgpio is installed",
                               level=logging.WARNING)
            return
        pins = f"NEXT GPIO{settings.next_pin}, BACK GPIO{settings.back_pin}, LANGUAGE GPIO{settings.language_pin}"
        self.buttons_state = {"gpio": f"ok ({pins})", "keyboard": settings.keyboard}
        self.kiosk.attach_buttons(self.buttons)

    def start_control(self) -> None:
        handlers = {
            "status": lambda request: self.status(),
            "screenshot": self._screenshot,
            "buttons": self._watch_buttons,
            "selftest": self._selftest_frame,
        }
        settings = self.config.control
        self.control = ControlServer(os.environ.get("EXPRESSION_PORTRAIT_SOCKET") or settings.socket,
                                     handlers, group=settings.group)
        try:
            self.control.start()
        except (OSError, ControlError) as exc:
            # The kiosk works without the technician socket, so log it and carry on.
            self._record_error("control", f"control socket unavailable: {exc}")
            self.control = None

    def start_signals(self) -> None:
        for number, handler in ((signal.SIGTERM, self._on_sigterm), (signal.SIGINT, self._on_sigterm),
                                (signal.SIGHUP, self._on_sighup)):
            self._old_handlers[number] = signal.signal(number, handler)

    def stop_signals(self) -> None:
        for number, handler in self._old_handlers.items():
            signal.signal(number, handler)
        self._old_handlers.clear()

    def stop_control(self) -> None:
        if self.control is not None:
            self.control.stop()
            self.control = None

    def stop_buttons(self) -> None:
        # The kiosk closes attached buttons when its loop ends; close them here if it never ran.
        if self.buttons is not None:
            try:
                self.buttons.close()
            except Exception as exc:  # gpiozero may refuse a second close
                log.debug("closing the buttons: %s", exc)
            self.buttons = None

    def stop_kiosk(self) -> None:
        if self.kiosk is not None:
            self.kiosk.stop()
            self.kiosk = None

    def stop_camera(self) -> None:
        if self.source is not None:
            self.source.stop()

    def stop_metrics(self) -> None:
        if self._metrics_thread is not None:
            self._metrics_thread.join(timeout=2)
            self._write_metrics()

    # The main loop.

    def run(self) -> int:
        """Start, run until SIGTERM and stop; return the process exit code."""
        code = EXIT_OK
        try:
            self.start()
            self.state = "running"
            while not self._stop.is_set():
                if self.kiosk is not None:
                    self._run_kiosk()
                else:
                    self._run_without_display()
        except ModelError as exc:
            code = self._refuse("models", exc, EXIT_MODELS)
        except ContentError as exc:
            # A language file that is invalid or does not fit this screen needs an operator.
            code = self._refuse("content", exc, EXIT_CONFIG)
        finally:
            self.notifier.stopping("stopping")
            self.stop()
        return code

    def _refuse(self, kind: str, exc: Exception, code: int) -> int:
        log.critical("cannot run: %s", exc, extra={"FAULT": kind})
        self.notifier.status(f"failed: {kind}: {exc}")
        return code

    def _run_kiosk(self) -> None:
        import pygame

        try:
            self.kiosk.run(until=lambda kiosk: self._stop.is_set())
        except (DisplayError, pygame.error) as exc:
            self.kiosk = None
            self.stop_buttons()  # they are attached again to the next kiosk
            self._display_lost(exc)
            return
        if not self._stop.is_set():
            log.info("the display loop ended (window closed): stopping")
            self._stop.set()

    def _run_without_display(self) -> None:
        """Keep the camera, control socket and watchdog going, then try the display again."""
        if not self.ready_sent:
            self._send_ready()
        deadline = time.monotonic() + self.display_retry_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.source.read(0.2)  # keeps stall detection working; the frame itself is dropped
            self._after_render(False)
        if self._stop.is_set():
            return
        log.debug("retrying the display")
        self.start_kiosk()
        self.start_buttons()

    def _after_render(self, camera_frame_arrived: bool) -> None:
        """Run after every drawn screen, in the main thread: watchdog, faults, reload, status."""
        now = time.monotonic()
        if self.kiosk is not None and self.kiosk.surface is not None:
            if self.display_state != "ok":
                self.display_state, self.display_error = "ok", ""
                log.info("display open: %s", self._display_mode())
            self._last_render_at = now
            self.watchdog.rendered()
            if not self.ready_sent:
                self._send_ready()
        else:
            # Nothing to render to: the retry loop itself is the sign of life.
            self.watchdog.recovering()
            self.watchdog.rendered()
        self.watchdog.tick()
        self._show_camera_fault()
        if self._reload_requested.is_set():
            self._reload_requested.clear()
            self.reload()
        if now - self._last_status_at >= STATUS_EVERY_S:
            self._last_status_at = now
            if self.kiosk is not None:
                self.metrics.sessions = self.kiosk.flow.sessions
            self.notifier.status(self.status_line())

    def _show_camera_fault(self) -> None:
        wanted = self._camera_fault
        if self.kiosk is None or wanted == self._shown_fault:
            return
        if wanted is None:
            self.kiosk.clear_out_of_order()
        else:
            state, message = wanted
            self.kiosk.out_of_order(f"camera {state}", message)
        self._shown_fault = wanted

    def _send_ready(self) -> None:
        self.ready_sent = True
        self.notifier.ready(self.status_line())
        log.info("ready: %s", self.status_line())

    # Signals and reload.

    def _on_sigterm(self, number: int, frame: Any) -> None:
        log.info("received %s: stopping", signal.Signals(number).name)
        self.state = "stopping"
        self.notifier.stopping("stopping")
        self._stop.set()
        if self.kiosk is not None:
            self.kiosk.stop()

    def _on_sighup(self, number: int, frame: Any) -> None:
        log.info("received SIGHUP: reloading config and content")
        self._reload_requested.set()
        if self.kiosk is None:
            self._reload_requested.clear()
            threading.Thread(target=self.reload, name="reload", daemon=True).start()

    def reload(self) -> bool:
        """Read the config file and content again and apply them without closing the display.

        An invalid config file or content file is logged and the running ones stay.
        Display, vision and models settings need a restart; a change there is logged.
        """
        self.notifier.reloading()
        try:
            loaded = load_config(self.config_path) if self.config_path else load_config()
            if self.kiosk is not None:
                content = load_content(loaded.config)
                self.kiosk.reload(content=content, settings=loaded.config.flow)
        except (ConfigError, ContentError) as exc:
            self._record_error("reload", f"reload rejected, keeping the running config: {exc}")
            self.notifier.ready(self.status_line())
            return False
        old, self.config = self.config, loaded.config
        self.config_path = loaded.path or self.config_path
        setup_logging(self.config.logging, verbose=self.verbose)
        for section in ("display", "vision", "models", "control", "buttons"):
            if getattr(old, section) != getattr(self.config, section):
                log.warning("[%s] changed: it takes effect at the next restart "
                            "(sudo systemctl restart expression-portrait)", section)
        if old.camera != self.config.camera and self.replay is None:
            log.info("camera settings changed: reopening the camera")
            self.source.restart()
        log.info("reloaded %s", self.config_path or "built-in defaults")
        self.notifier.ready(self.status_line())
        return True

    # Events from the parts.

    def _frame_arrived(self, frame: Any) -> None:
        self._latest_frame = frame  # memory only, for the technician's selftest
        self.metrics.count_frame(frame.timestamp)
        self.watchdog.frame_arrived()

    def _camera_changed(self, state: str, message: str) -> None:
        # Called from the supervisor thread; the main thread puts it on screen.
        if state == OK:
            self._camera_fault = None
            return
        self._record_error(f"camera_{state}", message, log_it=False)  # the supervisor logged it
        self._camera_fault = (state, message)

    def _button_pressed(self, press: Any) -> None:
        # Called from gpiozero's threads.
        if self.kiosk is not None:
            self.kiosk.press(press)
        event = {"button": getattr(press, "value", str(press)), "time": time.time()}
        for listener in list(self._button_listeners):
            listener.put(event)

    def _display_lost(self, exc: Exception) -> None:
        first = self.display_state != "absent"
        self.display_state = "absent"
        self.display_error = str(exc)
        self.metrics.count_error("display")
        self.errors.append({"time": time.time(), "kind": "display", "message": str(exc)})
        if first:
            log.error("display unavailable: %s; running without a screen and retrying every %.0f s",
                      exc, self.display_retry_s, extra={"FAULT": "display"})

    def _record_error(self, kind: str, message: str, *, log_it: bool = True, level: int = logging.ERROR) -> None:
        self.metrics.count_error(kind)
        self.errors.append({"time": time.time(), "kind": kind, "message": message})
        if log_it:
            log.log(level, "%s", message, extra={"FAULT": kind})

    # Control socket commands.

    def _screenshot(self, request: dict[str, Any]) -> dict[str, Any]:
        kiosk = self.kiosk
        if kiosk is None or kiosk.surface is None:
            raise ControlError(f"no screen to capture: the display is {self.display_state} {self.display_error}")
        blur = bool(request.get("blur_faces"))
        png = kiosk.screenshot(blur_faces=blur)  # raises PrivacyError while a visitor is analysed
        import base64

        log.info("screenshot taken by a technician (faces %s)", "blurred" if blur else "shown")
        return {"png_base64": base64.b64encode(png).decode("ascii"), "blurred": blur}

    def _watch_buttons(self, request: dict[str, Any]):
        listener: queue.SimpleQueue = queue.SimpleQueue()
        self._button_listeners.append(listener)
        try:
            yield {"button": None, "buttons": self.buttons_state}
            while not self._stop.is_set():
                try:
                    yield listener.get(timeout=1.0)
                except queue.Empty:
                    continue
        finally:
            self._button_listeners.remove(listener)

    def _selftest_frame(self, request: dict[str, Any]) -> dict[str, Any]:
        """Report whether live camera frames reach the models, from the kiosk's own analyses.

        The kiosk's analysis thread owns the interpreters (a TFLite interpreter
        must not run in two threads at once), so this reads its counters rather
        than analysing a frame itself.
        """
        if self.source is None or self.source.state != OK or self._latest_frame is None:
            state = self.source.state if self.source else "not started"
            raise ControlError(f"no camera frame: the camera is {state} {self.source.message if self.source else ''}")
        frame = self._latest_frame
        kiosk = self.kiosk.status().as_dict() if self.kiosk is not None else {}
        return {"camera": self.source.name, "frame_size": [frame.display.shape[1], frame.display.shape[0]],
                "analysis_size": [frame.analysis.shape[1], frame.analysis.shape[0]],
                "frame_age_s": round(time.monotonic() - frame.timestamp, 2),
                "analysed_frames": self.metrics.analyses, "faces_in_view": kiosk.get("faces"),
                "latency_ms": self.metrics.latency_summary(), "last_error": kiosk.get("last_error", "")}

    # Status.

    def status(self) -> dict[str, Any]:
        """Return everything `expression-portrait status` shows."""
        health = read_health()
        camera = self.source.describe() if self.source else {"state": "not started"}
        kiosk = self.kiosk.status().as_dict() if self.kiosk is not None else {}
        render_age = None if self._last_render_at is None else time.monotonic() - self._last_render_at
        healthy = (self.state == "running" and camera.get("state") == OK and self.display_state == "ok"
                   and render_age is not None and render_age < 5.0 and not health.get("under_voltage"))
        return {
            "healthy": healthy,
            "state": self.state,
            "kiosk": kiosk,
            "version": __version__,
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "fps": round(self.metrics.fps(), 2),
            "latency_ms": self.metrics.latency_summary(),
            "counts": {"frames": self.metrics.frames, "analyses": self.metrics.analyses,
                       "sessions": self.metrics.sessions, "errors": dict(self.metrics.errors)},
            "camera": camera,
            "display": {"state": self.display_state, "mode": self._display_mode(), "error": self.display_error,
                        "last_render_age_s": None if render_age is None else round(render_age, 2)},
            "buttons": self.buttons_state,
            "runtime": _runtime_name(),
            "models": self._models_state(),
            "config": str(self.config_path or "built-in defaults"),
            "health": {"cpu_temperature_c": health.get("cpu_temperature_c"),
                       "throttling": {k: bool(v) for k, v in health.items() if k != "cpu_temperature_c"}},
            "memory": _memory(),
            "watchdog": {"enabled": self.watchdog.enabled, "timeout_s": self.watchdog.timeout,
                         "pings": self.watchdog.pings},
            "last_errors": list(self.errors),
        }

    def status_line(self) -> str:
        camera = self.source.state if self.source else "not started"
        last = self.errors[-1]["message"] if self.errors else "none"
        return (f"state {self.state}, camera {camera}, display {self.display_state}, "
                f"{self.metrics.fps():.1f} fps, last error: {last[:120]}")

    def _models_state(self) -> list[dict[str, str]]:
        manifest = getattr(self.pipeline, "manifest", None)
        if manifest is None:
            return []
        return [{"name": e.name, "file": e.path.name, "task": e.task, "sha256": e.sha256}
                for e in manifest.models.values()]

    # Metrics.

    def _write_metrics_loop(self) -> None:
        interval = self.config.metrics.interval_s
        while not self._stop.wait(interval):
            self._write_metrics()

    def _write_metrics(self) -> None:
        settings = self.config.metrics
        if not settings.enabled or not Path(settings.directory).is_dir():
            return
        try:
            write_textfile(settings.directory, self.metrics.render(read_health()))
        except OSError as exc:
            self._record_error("metrics", f"cannot write the metrics textfile in {settings.directory}: {exc}")

    # Building the parts.

    def _camera(self, config: Config) -> FrameSource:
        if self.replay is not None:
            return ReplaySource(self.replay, realtime=True, loop=True, analysis_width=config.camera.analysis_width)
        return PicameraSource(config.camera)

    def _camera_label(self) -> str:
        if self.replay is not None:
            return f"replay of {self.replay}"
        camera = self.config.camera
        return f"picamera2 camera {camera.index}, {camera.width}x{camera.height} at {camera.fps} fps"

    def _display_mode(self) -> str:
        return self.display_override or self.config.display.sink

    def _make_sink(self) -> Any:
        mode = self._display_mode()
        if mode == "headless":
            size = (self.config.display.width or 1920, self.config.display.height or 1080)
            return OffscreenSink(size)
        from expression_portrait.ui.display import open_sink

        settings = self.config.display.model_copy(update={"sink": mode})
        return open_sink(settings)


def _runtime_name() -> str:
    from expression_portrait.runtime import find_runtime

    try:
        return str(find_runtime())
    except ExpressionPortraitError as exc:
        return f"none ({exc})"


def _model_files(config: Config) -> list[tuple[str, str]]:
    """List the manifest's model files for the system information, without verifying them yet."""
    from expression_portrait.models import load_manifest

    try:
        manifest = load_manifest(config.models.directory or None, verify=False)
    except ExpressionPortraitError as exc:
        return [("models", f"manifest unreadable: {exc}")]
    return [(f"model {e.name}", f"{e.path.name} sha256 {e.sha256[:16]}...") for e in manifest.models.values()]


def _memory() -> dict[str, float | None]:
    def read_kib(path: str, key: str) -> int | None:
        try:
            with open(path, encoding="ascii") as file:
                for line in file:
                    if line.startswith(key + ":"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            return None
        return None

    rss = read_kib("/proc/self/status", "VmRSS")
    available = read_kib("/proc/meminfo", "MemAvailable")
    total = read_kib("/proc/meminfo", "MemTotal")
    return {"rss_mib": None if rss is None else round(rss / 1024, 1),
            "available_mib": None if available is None else round(available / 1024, 1),
            "total_mib": None if total is None else round(total / 1024, 1)}


def _real_pipeline(config: Config) -> Any:
    from expression_portrait.vision.pipeline import Pipeline

    return Pipeline.from_manifest(config.models.directory or None, config.vision,
                                  num_threads=config.models.num_threads)


def load_content(config: Config) -> dict[str, Any]:
    """Load and check the language files the flow settings name (ContentError if one is bad)."""
    from expression_portrait.ui.content import load_languages

    return load_languages(config.flow.languages, config.content.directory or None)


def build_kiosk(config: Config, source: FrameSource, pipeline: Any, sink: Any, *,
                on_frame: Callable[[bool], None]) -> Any:
    """Build the real Kiosk with the configured content; its display opens when it runs."""
    from expression_portrait.kiosk import Kiosk
    from expression_portrait.ui.screens import extra_heads_from_manifest

    return Kiosk(source, pipeline, content=load_content(config), flow_settings=config.flow,
                 display_settings=config.display, sink=sink,
                 extra_heads=extra_heads_from_manifest(pipeline.manifest), on_frame=on_frame)


class InstrumentedPipeline:
    """Wrapper of the vision Pipeline that counts every analysis and its stage latencies in Metrics."""

    def __init__(self, pipeline: Any, metrics: Metrics) -> None:
        self.inner = pipeline
        self.metrics = metrics
        self.manifest = getattr(pipeline, "manifest", None)

    def analyze(self, frame: Any, **options: Any) -> Any:
        result = self.inner.analyze(frame, **options)
        self.metrics.count_analysis(getattr(result, "timings_ms", None))
        return result

    def reset(self) -> None:
        reset = getattr(self.inner, "reset", None)
        if reset is not None:
            reset()


def run_daemon(config_file: str | None, *, replay: str | None, display: str | None, verbose: int = 0) -> int:
    """Load the config and run the daemon; return the exit code (78 for an invalid config)."""
    try:
        loaded = load_config(config_file)
    except ConfigError as exc:
        setup_logging(verbose=verbose)
        log.critical("cannot start: %s", exc, extra={"FAULT": "config"})
        Notifier().status(f"failed: invalid config: {exc}".splitlines()[0])
        return EXIT_CONFIG
    return Daemon(loaded, replay=replay, display=display, verbose=verbose).run()
