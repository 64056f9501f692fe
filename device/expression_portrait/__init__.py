"""Expression Portrait: a gallery kiosk that shows how face models judge a visitor."""

__version__ = "0.1.0"
