"""Shared test setup: no real screen, sound card or GPIO chip is needed on this machine."""

import os

# pygame draws offscreen and plays nothing; gpiozero uses its mock pins unless a test
# chooses a factory itself.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
