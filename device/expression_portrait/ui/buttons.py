"""The visitor's buttons: three GPIO push buttons through gpiozero, and the keyboard.

gpiozero calls its callbacks in its own threads, so the buttons only put a
``Press`` on a queue; the kiosk's display loop takes them off. The third
button switches language on a short press and restarts the session when held
for ``restart_hold_seconds``: it acts on release, so a hold never also
switches the language.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable

import pygame

from expression_portrait.ui.flow import Press
from expression_portrait.ui.settings import ButtonSettings

log = logging.getLogger(__name__)

KEYS = {
    pygame.K_RIGHT: Press.NEXT,
    pygame.K_SPACE: Press.NEXT,
    pygame.K_RETURN: Press.NEXT,
    pygame.K_LEFT: Press.BACK,
    pygame.K_BACKSPACE: Press.BACK,
    pygame.K_l: Press.LANGUAGE,
    pygame.K_r: Press.RESTART,
}


def is_quit(event: pygame.event.Event) -> bool:
    """Return whether the event is a request to quit, e.g. a closed window."""
    return event.type == pygame.QUIT


def key_press(event: pygame.event.Event) -> Press | None:
    """Return the press a keyboard event stands for, or None."""
    if event.type != pygame.KEYDOWN:
        return None
    return KEYS.get(event.key)


class GpioButtons:
    """NEXT, BACK and LANGUAGE/RESTART buttons on BCM pins.

    :param settings: pins, pull-ups, bounce and hold times.
    :param on_press: called with each ``Press``, from gpiozero's threads.
    :param pin_factory: a gpiozero pin factory; tests pass ``MockFactory()``.
    """

    def __init__(self, settings: ButtonSettings, on_press: Callable[[Press], None], *,
                 pin_factory=None) -> None:
        from gpiozero import Button

        bounce = settings.bounce_seconds or None
        common = {"pull_up": settings.pull_up, "bounce_time": bounce, "pin_factory": pin_factory}
        self._on_press = on_press
        self._held = False
        # Strong references: gpiozero's pins hold their devices weakly, so a Button that is
        # garbage-collected stops firing.
        self.next = Button(settings.next_pin, **common)
        try:
            self.back = Button(settings.back_pin, **common)
            self.language = Button(settings.language_pin, hold_time=settings.restart_hold_seconds,
                                   **common)
        except Exception:
            self.next.close()
            raise
        self.next.when_pressed = lambda: on_press(Press.NEXT)
        self.back.when_pressed = lambda: on_press(Press.BACK)
        self.language.when_pressed = self._language_down
        self.language.when_held = self._language_held
        self.language.when_released = self._language_up
        log.info("buttons ready: NEXT on GPIO%d, BACK on GPIO%d, LANGUAGE/RESTART on GPIO%d",
                 settings.next_pin, settings.back_pin, settings.language_pin)

    def _language_down(self) -> None:
        self._held = False

    def _language_held(self) -> None:
        self._held = True
        self._on_press(Press.RESTART)

    def _language_up(self) -> None:
        if not self._held:
            self._on_press(Press.LANGUAGE)
        self._held = False

    def close(self) -> None:
        for button in (self.next, self.back, self.language):
            button.close()

    def __enter__(self) -> GpioButtons:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PressQueue:
    """Presses from any thread, taken in order by the display loop."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Press] = queue.SimpleQueue()

    def put(self, press: Press) -> None:
        self._queue.put(press)

    def drain(self) -> list[Press]:
        presses = []
        while True:
            try:
                presses.append(self._queue.get_nowait())
            except queue.Empty:
                return presses
