"""GPIO buttons driven through gpiozero's MockFactory, and the development keyboard."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import threading  # noqa: E402

import pygame  # noqa: E402
import pytest  # noqa: E402
from gpiozero import Device  # noqa: E402
from gpiozero.pins.mock import MockFactory  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from expression_portrait.ui.buttons import GpioButtons, PressQueue, key_press  # noqa: E402
from expression_portrait.ui.flow import Press  # noqa: E402
from expression_portrait.ui.settings import ButtonSettings  # noqa: E402


@pytest.fixture
def factory():
    saved = Device.pin_factory
    Device.pin_factory = MockFactory()
    try:
        yield Device.pin_factory
    finally:
        Device.pin_factory.reset()
        Device.pin_factory = saved


def make_buttons(factory, **settings):
    presses = PressQueue()
    buttons = GpioButtons(ButtonSettings(**settings), presses.put, pin_factory=factory)
    return buttons, presses


def tap(factory, pin: int, pull_up: bool = True) -> None:
    mock = factory.pin(pin)
    if pull_up:
        mock.drive_low()
        mock.drive_high()
    else:
        mock.drive_high()
        mock.drive_low()


def test_default_pins_press_next_back_language(factory):
    buttons, presses = make_buttons(factory, bounce_seconds=0)
    with buttons:
        tap(factory, 17)
        tap(factory, 27)
        tap(factory, 22)

        assert presses.drain() == [Press.NEXT, Press.BACK, Press.LANGUAGE]


def test_buttons_use_pull_ups_by_default(factory):
    buttons, _ = make_buttons(factory)
    with buttons:
        assert buttons.next.pull_up
        assert factory.pin(17).pull == "up"
        assert not buttons.next.is_pressed


def test_pins_and_pull_down_from_settings(factory):
    buttons, presses = make_buttons(factory, next_pin=5, back_pin=6, language_pin=13,
                                    pull_up=False, bounce_seconds=0)
    with buttons:
        assert factory.pin(5).pull == "down"
        tap(factory, 5, pull_up=False)
        tap(factory, 6, pull_up=False)
        tap(factory, 17, pull_up=False)

        assert presses.drain() == [Press.NEXT, Press.BACK]


def test_bounce_time_reaches_gpiozero(factory):
    buttons, _ = make_buttons(factory, bounce_seconds=0.05)
    with buttons:
        assert buttons.next.pin.bounce == pytest.approx(0.05)
        assert buttons.back.pin.bounce == pytest.approx(0.05)


def test_holding_third_button_restarts_without_language(factory):
    buttons, presses = make_buttons(factory, restart_hold_seconds=0.5, bounce_seconds=0)
    held = threading.Event()
    original = buttons.language.when_held

    def on_held():
        original()
        held.set()

    buttons.language.when_held = on_held
    with buttons:
        factory.pin(22).drive_low()
        assert held.wait(3), "when_held never fired"
        factory.pin(22).drive_high()

        assert presses.drain() == [Press.RESTART]


def test_mashing_delivers_every_press_in_order(factory):
    buttons, presses = make_buttons(factory, bounce_seconds=0)
    with buttons:
        for _ in range(25):
            tap(factory, 17)
            tap(factory, 27)

        got = presses.drain()

    assert got == [Press.NEXT, Press.BACK] * 25


def test_closed_buttons_release_their_pins(factory):
    buttons, _ = make_buttons(factory)
    buttons.close()

    again, presses = make_buttons(factory, bounce_seconds=0)
    with again:
        tap(factory, 17)
        assert presses.drain() == [Press.NEXT]


def test_same_pin_twice_is_rejected():
    with pytest.raises(ValidationError, match="own BCM pin"):
        ButtonSettings(next_pin=17, back_pin=17)


@pytest.mark.parametrize("field, value", [("next_pin", 28), ("bounce_seconds", -1),
                                          ("restart_hold_seconds", 0.1), ("speed", 1)])
def test_bad_button_settings_rejected(field, value):
    with pytest.raises(ValidationError):
        ButtonSettings(**{field: value})


@pytest.mark.parametrize("key, press", [
    (pygame.K_RIGHT, Press.NEXT), (pygame.K_SPACE, Press.NEXT), (pygame.K_LEFT, Press.BACK),
    (pygame.K_l, Press.LANGUAGE), (pygame.K_r, Press.RESTART), (pygame.K_z, None),
])
def test_keyboard_maps_keys(key, press):
    assert key_press(pygame.event.Event(pygame.KEYDOWN, key=key)) == press
    assert key_press(pygame.event.Event(pygame.KEYUP, key=key)) is None
