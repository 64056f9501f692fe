"""The visitor experience: session flow, screens, content and buttons."""
