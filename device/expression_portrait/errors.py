"""Exceptions of the kiosk, one base per subsystem.

Where a builtin fits, an error also inherits it, so callers may catch either
``ConfigError`` or the ``ValueError`` they would expect from bad input.
"""


class ExpressionPortraitError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(ExpressionPortraitError, ValueError):
    """A config file or value is invalid."""


class ModelError(ExpressionPortraitError):
    """A model file or its manifest entry is missing, corrupt or invalid."""


class RuntimeMissingError(ModelError, ImportError):
    """Neither TFLite runtime (ai-edge-litert nor tflite-runtime) can be imported."""


class MediaError(ExpressionPortraitError):
    """A packaged test image or video could not be fetched, verified or decoded."""


class FrameError(ExpressionPortraitError, ValueError):
    """A camera frame or image array has a shape or dtype the pipeline cannot use."""


class DecodeError(ExpressionPortraitError, ValueError):
    """An image or video file cannot be read or decoded."""


class CameraError(ExpressionPortraitError):
    """The camera is missing, busy or has stopped delivering frames."""


class DisplayError(ExpressionPortraitError):
    """The screen cannot be opened or drawn to."""


class ContentError(ExpressionPortraitError, ValueError):
    """Explanation content (a language file) is missing a key or does not fit the screen."""


class ControlError(ExpressionPortraitError):
    """The running kiosk cannot be reached over its control socket, or refused a request."""


class PrivacyError(ExpressionPortraitError):
    """A request would take a visitor's face out of memory without blurring it."""
