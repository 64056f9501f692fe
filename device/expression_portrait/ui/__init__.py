"""The visitor experience: session flow, screens, content and buttons."""

import os

# pygame prints a banner on import unless told not to; the kiosk's output is its log.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
