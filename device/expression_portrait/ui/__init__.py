"""The visitor experience: session flow, screens, content and buttons."""

import os

# pygame prints a banner on import unless this variable is set; the kiosk reports through its log.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
