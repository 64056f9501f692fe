"""Settings of the visitor experience: session timings, the screen and the buttons.

The daemon's config file nests these models; every field has bounds, so a typo
or an out-of-range value is rejected when the config is loaded, not mid-session.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The emotion model's labels in its output order; prompt targets must be among them.
EMOTION_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Screen sizes every page of content is checked against: landscape HD, landscape
# 720p and a portrait-mounted HD screen.
SUPPORTED_RESOLUTIONS = ((1920, 1080), (1280, 720), (1080, 1920))


class FlowSettings(BaseModel):
    """Timings and rules of one visitor session, from the attract screen to the last page."""

    model_config = ConfigDict(extra="forbid")

    targets: list[str] = Field(
        default=["angry", "disgust", "fear", "happy", "sad", "surprise"],
        min_length=1,
        description="Emotions the kiosk may ask for, drawn at random with no immediate repeat; "
        f"each one of {', '.join(EMOTION_LABELS)}",
    )
    languages: list[str] = Field(
        default=["en", "fr"],
        min_length=1,
        description="Content languages in the order the language button cycles through them; "
        "the first is shown at start and after each session",
    )
    steady_seconds: float = Field(
        1.0, ge=0.2, le=10,
        description="Seconds one sitter must stay centred and still before the prompt appears",
    )
    centre_tolerance: float = Field(
        0.25, ge=0.05, le=0.5,
        description="Largest distance of the face centre from the frame centre, as a fraction "
        "of the frame width, for the sitter to count as centred",
    )
    min_face_height: float = Field(
        0.15, ge=0.02, le=0.9,
        description="Smallest face box height, as a fraction of the frame height, for the "
        "sitter to count as close enough",
    )
    max_motion: float = Field(
        0.06, ge=0.005, le=0.5,
        description="Largest move of the face centre between two analysed frames, as a "
        "fraction of the frame width, for the sitter to count as still",
    )
    prompt_seconds: float = Field(
        3.0, ge=0.5, le=30, description="Seconds the prompt is shown before the countdown starts",
    )
    countdown_seconds: int = Field(
        3, ge=1, le=10, description="Length of the countdown before the capture, in whole seconds",
    )
    capture_seconds: float = Field(
        1.5, ge=0.3, le=10,
        description="Seconds of frames the pipeline aggregates into one verdict",
    )
    lost_grace_seconds: float = Field(
        0.7, ge=0.3, le=5,
        description="Seconds the sitter may vanish during the countdown or capture before "
        "it is cancelled",
    )
    max_retries: int = Field(
        2, ge=0, le=5,
        description="Cancelled captures allowed in one session before the kiosk returns to "
        "the attract screen",
    )
    absent_seconds: float = Field(
        4.0, ge=1, le=60,
        description="Seconds with nobody in front of the camera before a session ends and the "
        "attract screen returns",
    )
    rest_seconds: float = Field(
        5.0, ge=0, le=120,
        description="Seconds the attract screen stays after a session before a new one can "
        "start, so a sitter who stays seated is not asked again at once",
    )
    verdict_seconds: float = Field(
        15.0, ge=3, le=300,
        description="Seconds the verdict stays without a button press before the first "
        "explanation page appears",
    )
    page_seconds: float = Field(
        20.0, ge=3, le=300,
        description="Seconds an explanation page stays without a button press before the next "
        "one appears; after the last page the session ends",
    )
    session_timeout_seconds: float = Field(
        240.0, ge=30, le=3600,
        description="Maximum session length in seconds, whatever happens, before the attract screen returns",
    )
    press_interval_seconds: float = Field(
        0.25, ge=0, le=2,
        description="Shortest gap in seconds between two accepted presses of the same button; "
        "faster presses are ignored",
    )
    no_frame_seconds: float = Field(
        5.0, ge=1, le=120,
        description="Seconds without a camera frame before the out-of-order screen appears; it "
        "clears by itself when frames return",
    )
    max_pipeline_failures: int = Field(
        10, ge=1, le=1000,
        description="Consecutive failed analyses before the out-of-order screen appears",
    )

    @field_validator("targets")
    @classmethod
    def _check_targets(cls, targets: list[str]) -> list[str]:
        unknown = [t for t in targets if t not in EMOTION_LABELS]
        if unknown:
            raise ValueError(
                f"unknown emotion {unknown[0]!r}; use one of {', '.join(EMOTION_LABELS)}"
            )
        if len(set(targets)) != len(targets):
            raise ValueError("each emotion may appear only once")
        return targets

    @field_validator("languages")
    @classmethod
    def _check_languages(cls, languages: list[str]) -> list[str]:
        for code in languages:
            if not (2 <= len(code) <= 8 and code.replace("-", "").isalnum() and code.islower()):
                raise ValueError(
                    f"language {code!r} is not a lower-case code such as 'en' or 'pt-br'"
                )
        if len(set(languages)) != len(languages):
            raise ValueError("each language may appear only once")
        return languages


class DisplaySettings(BaseModel):
    """Where and how the screens are drawn."""

    model_config = ConfigDict(extra="forbid")

    sink: Literal["auto", "kmsdrm", "window", "headless"] = Field(
        "auto",
        description="'kmsdrm': full screen on a Pi with no desktop; 'window': a window on a "
        "desktop; 'headless': no screen, one PNG per screen change into output_dir (tests "
        "and the demo only, because it writes visitors' faces to disk); 'auto': window when "
        "DISPLAY or WAYLAND_DISPLAY is set, else kmsdrm",
    )
    width: int | None = Field(
        None, ge=320, le=7680,
        description="Screen width in pixels; empty for 1920 in a window or headless and for the "
        "screen's own mode with kmsdrm",
    )
    height: int | None = Field(
        None, ge=240, le=7680,
        description="Screen height in pixels; empty for 1080 in a window or headless and for the "
        "screen's own mode with kmsdrm",
    )
    fps: int = Field(30, ge=1, le=60, description="Display frames per second")
    smooth_scaling: bool = Field(
        False,
        description="Smooth the live picture when it is scaled to the screen; looks better when "
        "the camera's display stream is smaller than the screen, but costs about 30 ms per "
        "1920x1080 frame on an x86 desktop and more on a Pi",
    )
    mirror: bool = Field(
        True, description="Flip the live camera image left to right so it behaves like a mirror",
    )
    kmsdrm_device_index: int | None = Field(
        None, ge=0, le=99,
        description="DRM card index for kmsdrm (SDL_KMSDRM_DEVICE_INDEX); empty lets SDL choose, "
        "which can pick the wrong card on a Pi 5",
    )
    output_dir: Path | None = Field(
        None, description="Folder for the headless sink's PNG files; required with sink='headless'",
    )
    font_path: Path | None = Field(
        None,
        description="TrueType font for all text; empty for DejaVu Sans when installed "
        "(Debian package fonts-dejavu-core), else pygame's built-in font",
    )

    @model_validator(mode="after")
    def _check_sink(self) -> DisplaySettings:
        if self.sink == "headless" and self.output_dir is None:
            raise ValueError("sink 'headless' writes PNG files and needs output_dir")
        if (self.width is None) != (self.height is None):
            raise ValueError("set both width and height, or neither")
        if self.font_path is not None and not self.font_path.is_file():
            raise ValueError(f"font_path {self.font_path} is not a file")
        return self


class ButtonSettings(BaseModel):
    """The three GPIO push buttons, wired between a BCM pin and ground."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Read the GPIO buttons; off on a machine without GPIO")
    next_pin: int = Field(17, ge=0, le=27, description="BCM pin of the NEXT button")
    back_pin: int = Field(27, ge=0, le=27, description="BCM pin of the BACK button")
    language_pin: int = Field(
        22, ge=0, le=27,
        description="BCM pin of the third button: a press switches language, a hold restarts",
    )
    pull_up: bool = Field(
        True,
        description="Use the internal pull-up, for buttons wired to ground; false for buttons "
        "wired to 3.3 V with the internal pull-down",
    )
    bounce_seconds: float = Field(
        0.03, ge=0, le=1,
        description="Debounce time in seconds passed to gpiozero; 0 turns debouncing off",
    )
    restart_hold_seconds: float = Field(
        2.0, ge=0.5, le=10,
        description="Seconds the third button must be held to end the session and restart",
    )
    keyboard: bool = Field(
        True,
        description="Also accept the keyboard: right arrow or space for NEXT, left arrow for "
        "BACK, L for language, R for restart",
    )

    @model_validator(mode="after")
    def _check_pins(self) -> ButtonSettings:
        pins = {"next_pin": self.next_pin, "back_pin": self.back_pin,
                "language_pin": self.language_pin}
        if len(set(pins.values())) != len(pins):
            raise ValueError(f"each button needs its own BCM pin, got {pins}")
        return self
