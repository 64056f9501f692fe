"""Display sinks for the drawn screens: full screen on KMS/DRM, a desktop window, or PNG files.

Each sink owns one screen-sized surface that the renderer draws on, and
``present(screen)`` shows it. ``screen`` names what is on the surface (state,
page, language, countdown number), so the headless sink can write one PNG per
screen change instead of one per frame.

The headless sink writes camera pictures to disk, so it is only ever used when
chosen explicitly (tests and the demo); ``auto`` never picks it.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import threading
from pathlib import Path

import pygame

from expression_portrait.errors import DisplayError
from expression_portrait.ui.settings import DisplaySettings

log = logging.getLogger(__name__)

DEFAULT_SIZE = (1920, 1080)


def new_surface(size: tuple[int, int]) -> pygame.Surface:
    """Return a blank off-screen surface of ``size``."""
    return pygame.Surface(size)


def png_bytes(surface: pygame.Surface) -> bytes:
    """Encode ``surface`` as PNG in memory."""
    buffer = io.BytesIO()
    pygame.image.save(surface, buffer, "screen.png")
    return buffer.getvalue()


class HeadlessSink:
    """No screen: one PNG per screen change in ``output_dir``.

    A screen is saved as it looks ``settle_frames`` frames after it appeared, so
    the live picture and the first analysis have arrived, or as it last looked
    if it lasted fewer frames.

    ``present`` only copies the surface: a worker thread encodes and writes the
    PNG, because saving a 1920x1080 PNG takes one to three seconds and would
    stall the display loop. Paths enter ``written`` at once; the files exist
    once ``close()`` has returned.
    """

    name = "headless"

    def __init__(self, output_dir: Path, size: tuple[int, int] = DEFAULT_SIZE,
                 settle_frames: int = 8, unique: bool = False) -> None:
        self.output_dir = Path(output_dir)
        self.size = size
        self.settle_frames = settle_frames
        self.unique = unique  # save each screen name once, however often it comes back
        self._names: set[str] = set()
        self.surface: pygame.Surface | None = None
        self.written: list[Path] = []
        self._screen: str | None = None
        self._frames = 0
        self._saved = True
        self._last: pygame.Surface | None = None
        self._pending: queue.SimpleQueue[tuple[pygame.Surface, Path] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self.errors: list[str] = []

    def open(self) -> pygame.Surface:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.surface = pygame.Surface(self.size)
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="headless-png", daemon=True)
            self._writer.start()
        return self.surface

    def present(self, screen: str) -> None:
        if screen != self._screen:
            self._flush()
            self._screen = screen
            self._frames = 0
            self._saved = self.unique and screen in self._names
            self._last = None
        self._frames += 1
        if not self._saved and self._frames >= self.settle_frames:
            self._save(self.surface.copy())
        elif not self._saved:
            self._last = self.surface.copy()

    def events(self) -> list[pygame.event.Event]:
        return []

    def close(self) -> None:
        """Save the last screen if it is still unsaved, and wait until every PNG is written."""
        self._flush()
        if self._writer is not None:
            self._pending.put(None)
            self._writer.join()
            self._writer = None

    def _flush(self) -> None:
        if self._screen is not None and not self._saved and self._last is not None:
            self._save(self._last)

    def _save(self, surface: pygame.Surface) -> None:
        """Queue ``surface``, a copy the display loop no longer draws on, for the writer."""
        path = self.output_dir / f"{len(self.written) + 1:02d}-{self._screen}.png"
        self.written.append(path)
        self._names.add(self._screen)
        self._saved = True
        self._pending.put((surface, path))

    def _write_loop(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            surface, path = item
            try:
                pygame.image.save(surface, str(path))
            except (pygame.error, OSError) as exc:
                log.error("screen not saved: %s (%s)", path, exc)
                self.errors.append(f"{path}: {exc}")
                continue
            log.info("screen saved: %s", path)


class WindowSink:
    """A pygame display: a desktop window, or full screen on KMS/DRM without a desktop."""

    def __init__(self, settings: DisplaySettings, driver: str) -> None:
        self.settings = settings
        self.driver = driver
        self.name = driver
        self.surface: pygame.Surface | None = None

    def open(self) -> pygame.Surface:
        if self.driver == "kmsdrm":
            os.environ["SDL_VIDEODRIVER"] = "kmsdrm"
            if self.settings.kmsdrm_device_index is not None:
                os.environ["SDL_KMSDRM_DEVICE_INDEX"] = str(self.settings.kmsdrm_device_index)
        try:
            pygame.display.init()
            if self.driver == "kmsdrm":
                size = (self.settings.width or 0, self.settings.height or 0)
                self.surface = pygame.display.set_mode(size, pygame.FULLSCREEN)
                pygame.mouse.set_visible(False)
            else:
                size = (self.settings.width or DEFAULT_SIZE[0], self.settings.height or DEFAULT_SIZE[1])
                self.surface = pygame.display.set_mode(size)
                pygame.display.set_caption("Expression Portrait")
        except pygame.error as exc:
            hint = ("boot to the console (no desktop holds the screen), put the service user in "
                    "the video, render and input groups, and on a Pi 5 set kmsdrm_device_index"
                    if self.driver == "kmsdrm" else "check DISPLAY or WAYLAND_DISPLAY")
            raise DisplayError(f"cannot open the {self.driver} display ({exc}); {hint}") from exc
        log.info("display open: %s %dx%d", pygame.display.get_driver(), *self.surface.get_size())
        return self.surface

    def present(self, screen: str) -> None:
        pygame.display.flip()

    def events(self) -> list[pygame.event.Event]:
        return pygame.event.get()

    def close(self) -> None:
        pygame.display.quit()


def open_sink(settings: DisplaySettings):
    """Create the sink named in ``settings``; ``auto`` picks a window under a desktop, else kmsdrm."""
    sink = settings.sink
    if sink == "headless":
        size = (settings.width or DEFAULT_SIZE[0], settings.height or DEFAULT_SIZE[1])
        return HeadlessSink(settings.output_dir, size)
    if sink == "auto":
        sink = "window" if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") else "kmsdrm"
    return WindowSink(settings, sink)
