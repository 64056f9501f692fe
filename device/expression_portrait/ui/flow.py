"""The session state machine: attract, prompt, countdown, capture, verdict, explanations.

The flow is pure: it reads time only from the injected clock, draws prompts
only from the injected random generator, and never touches the camera, the
models or the screen. The kiosk feeds it one ``Observation`` per analysed frame,
button presses and clock ticks, and reads ``state`` and the fields below to
decide what to draw.

Outcomes of the awkward cases:

- The sitter leaves mid-countdown: after ``lost_grace_seconds`` the countdown is
  cancelled and the prompt returns; after ``absent_seconds`` with nobody in view
  the attract screen returns.
- A second person steps in: while the sitter stays, the session goes on and a
  "one at a time" notice shows. When the pipeline's sitter becomes another face
  in view during the prompt, countdown or capture, the session restarts at the
  prompt for the new sitter. A lone face under a new track id is taken to be
  the same sitter found again. The verdict and explanation pages are not
  interrupted, since several people often read them together.
- Buttons pressed in any state or mashed: NEXT and BACK page through the
  verdict and explanations and are ignored elsewhere; LANGUAGE works in every
  state but out-of-order; RESTART ends any session. A press of the same button
  within ``press_interval_seconds`` of the last accepted one is ignored.
- The face is lost during capture: after ``lost_grace_seconds`` the capture is
  cancelled and the prompt returns with a notice, at most ``max_retries``
  times, then the attract screen returns. A capture that ends with no usable
  frames counts the same way.
- The verdict and pages time out on idle; every session ends after
  ``session_timeout_seconds``.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from expression_portrait.ui.settings import FlowSettings


class State(enum.Enum):
    ATTRACT = "attract"
    PROMPT = "prompt"
    COUNTDOWN = "countdown"
    CAPTURE = "capture"
    VERDICT = "verdict"
    EXPLANATIONS = "explanations"
    OUT_OF_ORDER = "out_of_order"


# States in which a visitor's face is being analysed or shown back to them.
SESSION_STATES = frozenset(
    {State.PROMPT, State.COUNTDOWN, State.CAPTURE, State.VERDICT, State.EXPLANATIONS}
)


class Press(enum.Enum):
    NEXT = "next"
    BACK = "back"
    LANGUAGE = "language"
    RESTART = "restart"


class Notice(enum.Enum):
    """A short message the screen adds to the current state."""

    ONE_AT_A_TIME = "one_at_a_time"
    FACE_LOST = "face_lost"
    NEW_SITTER = "new_sitter"


@dataclass(frozen=True)
class Observation:
    """Summary of one analysed frame: the facts the flow decides on."""

    faces: int  # faces in view
    sitter: bool  # the pipeline chose a sitter
    sitter_id: int | None = None  # the sitter's track id, None when not tracked
    centred: bool = False  # the sitter is centred and close enough
    position: tuple[float, float] | None = None  # sitter's face centre, fractions of the frame


def observe(result: Any, settings: FlowSettings) -> Observation:
    """Summarise a ``FrameResult`` for the flow."""
    sitter = result.sitter
    if sitter is None:
        return Observation(faces=len(result.faces), sitter=False)
    width, height = result.frame_size
    cx, cy = sitter.detection.center
    position = (cx / width, cy / height)
    centred = (
        abs(position[0] - 0.5) <= settings.centre_tolerance
        and abs(position[1] - 0.5) <= settings.centre_tolerance * width / height
        and sitter.detection.height / height >= settings.min_face_height
    )
    return Observation(
        faces=len(result.faces),
        sitter=True,
        sitter_id=sitter.track_id,
        centred=centred,
        position=position,
    )


class Flow:
    """One kiosk's session state, advanced by observations, presses and ticks.

    :param settings: the timings and rules.
    :param page_count: number of explanation pages after the verdict.
    :param clock: monotonic seconds; ``time.monotonic`` unless a test injects one.
    :param rng: draws the prompt target.
    """

    def __init__(self, settings: FlowSettings, *, page_count: int,
                 clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.page_count = page_count
        self._clock = clock
        self._rng = rng or random.Random()

        self.state = State.ATTRACT
        self.entered_at = clock()
        self.language_index = 0
        self.target: str | None = None
        self.page = 0
        self.verdict: Any = None
        self.notice: Notice | None = None
        self.out_of_order_reason = ""
        self.technician_hint = ""
        self.sessions = 0

        self._last_target: str | None = None
        self._session_started = self.entered_at
        self._sitter_id: int | None = None
        self._steady_since: float | None = None
        self._last_position: tuple[float, float] | None = None
        self._sitter_seen_at = self.entered_at
        self._anyone_seen_at = self.entered_at
        self._last_activity = self.entered_at
        self._retries = 0
        self._last_press: dict[Press, float] = {}

    # -- what the screen shows -------------------------------------------------

    @property
    def language(self) -> str:
        return self.settings.languages[self.language_index % len(self.settings.languages)]

    @property
    def in_session(self) -> bool:
        return self.state in SESSION_STATES

    def elapsed(self) -> float:
        """Seconds since the current state was entered."""
        return self._clock() - self.entered_at

    def countdown_number(self) -> int:
        """Return the number the countdown shows now, from countdown_seconds down to 1."""
        remaining = self.settings.countdown_seconds - self.elapsed()
        return max(1, min(self.settings.countdown_seconds, int(remaining) + 1))

    @property
    def capture_due(self) -> bool:
        """True when the capture window is over and the kiosk should call finish_capture."""
        return self.state == State.CAPTURE and self.elapsed() >= self.settings.capture_seconds

    # -- inputs ----------------------------------------------------------------

    def observe(self, obs: Observation) -> None:
        """Take in the analysis of the newest frame."""
        now = self._clock()
        if obs.faces > 0:
            self._anyone_seen_at = now
        self._update_steadiness(obs, now)
        if self.state == State.OUT_OF_ORDER:
            return

        if obs.sitter:
            self._sitter_seen_at = now
        if self.state in (State.PROMPT, State.COUNTDOWN, State.CAPTURE):
            changed = (obs.sitter and obs.sitter_id is not None and self._sitter_id is not None
                       and obs.sitter_id != self._sitter_id)
            if changed and obs.faces > 1:
                # Another face in view took the sitter's place: a new person, so start over.
                self._sitter_id = obs.sitter_id
                self._enter(State.PROMPT, now)
                self.notice = Notice.NEW_SITTER
                return
            if obs.sitter and (changed or self._sitter_id is None):
                # Alone in view under a new track id: the tracker lost and found the same face.
                self._sitter_id = obs.sitter_id
            if obs.faces > 1:
                self.notice = Notice.ONE_AT_A_TIME
            elif self.notice == Notice.ONE_AT_A_TIME:
                self.notice = None

    def press(self, button: Press) -> bool:
        """Handle a button press; return whether it was accepted."""
        now = self._clock()
        last = self._last_press.get(button)
        if last is not None and now - last < self.settings.press_interval_seconds:
            return False
        if self.state == State.OUT_OF_ORDER:
            return False
        self._last_press[button] = now
        self._last_activity = now

        if button == Press.LANGUAGE:
            self.language_index = (self.language_index + 1) % len(self.settings.languages)
            return True
        if button == Press.RESTART:
            if self.state == State.ATTRACT:
                return False
            self._end_session(now)
            return True
        if self.state == State.VERDICT:
            if button == Press.NEXT and self.page_count > 0:
                self.page = 0
                self._enter(State.EXPLANATIONS, now)
                return True
            return False
        if self.state == State.EXPLANATIONS:
            self._turn_page(1 if button == Press.NEXT else -1, now)
            return True
        return False

    def tick(self) -> None:
        """Apply every transition that is due by the clock."""
        now = self._clock()
        if self.state == State.OUT_OF_ORDER:
            return
        if self.in_session and now - self._session_started >= self.settings.session_timeout_seconds:
            self._end_session(now)
            return

        handler = getattr(self, f"_tick_{self.state.value}")
        handler(now)

    def finish_capture(self, verdict: Any) -> None:
        """End the capture with the aggregated verdict, or None when no frame was usable."""
        if self.state != State.CAPTURE:
            return
        now = self._clock()
        if verdict is None:
            self._cancel_capture(now)
            return
        self.verdict = verdict
        self.notice = None
        self._last_activity = now
        self._enter(State.VERDICT, now)

    def out_of_order(self, reason: str, technician_hint: str = "") -> None:
        """Show the out-of-order screen until clear_out_of_order; ends any session."""
        now = self._clock()
        self.out_of_order_reason = reason
        self.technician_hint = technician_hint
        self._forget_session()
        self._enter(State.OUT_OF_ORDER, now)

    def clear_out_of_order(self) -> None:
        """Leave the out-of-order screen for the attract screen."""
        if self.state != State.OUT_OF_ORDER:
            return
        self.out_of_order_reason = ""
        self.technician_hint = ""
        self._enter(State.ATTRACT, self._clock())

    def set_page_count(self, page_count: int) -> None:
        """Change the number of explanation pages, e.g. after the content is reloaded."""
        self.page_count = page_count
        if self.state == State.EXPLANATIONS and self.page >= page_count:
            self._enter(State.VERDICT, self._clock())

    # -- one handler per state -------------------------------------------------

    def _tick_attract(self, now: float) -> None:
        resting = self.sessions > 0 and now - self.entered_at < self.settings.rest_seconds
        steady = (self._steady_since is not None
                  and now - self._steady_since >= self.settings.steady_seconds)
        if steady and not resting:
            self._start_session(now)

    def _tick_prompt(self, now: float) -> None:
        if now - self._sitter_seen_at >= self.settings.absent_seconds:
            self._end_session(now)
        elif (now - self.entered_at >= self.settings.prompt_seconds
              and now - self._sitter_seen_at < self.settings.lost_grace_seconds):
            self._enter(State.COUNTDOWN, now)

    def _tick_countdown(self, now: float) -> None:
        if now - self._sitter_seen_at >= self.settings.lost_grace_seconds:
            self.notice = Notice.FACE_LOST
            self._enter(State.PROMPT, now)
        elif now - self.entered_at >= self.settings.countdown_seconds:
            self._enter(State.CAPTURE, now)

    def _tick_capture(self, now: float) -> None:
        if now - self._sitter_seen_at >= self.settings.lost_grace_seconds:
            self._cancel_capture(now)

    def _tick_verdict(self, now: float) -> None:
        if self._nobody_for(now):
            self._end_session(now)
        elif now - max(self.entered_at, self._last_activity) >= self.settings.verdict_seconds:
            if self.page_count > 0:
                self.page = 0
                self._enter(State.EXPLANATIONS, now)
            else:
                self._end_session(now)

    def _tick_explanations(self, now: float) -> None:
        if self._nobody_for(now):
            self._end_session(now)
        elif now - max(self.entered_at, self._last_activity) >= self.settings.page_seconds:
            if self.page + 1 >= self.page_count:
                self._end_session(now)
            else:
                self._turn_page(1, now)

    # -- helpers ----------------------------------------------------------------

    def _update_steadiness(self, obs: Observation, now: float) -> None:
        moved = (
            obs.position is not None and self._last_position is not None
            and max(abs(obs.position[0] - self._last_position[0]),
                    abs(obs.position[1] - self._last_position[1])) > self.settings.max_motion
        )
        self._last_position = obs.position
        if not (obs.sitter and obs.centred) or moved:
            self._steady_since = None
        elif self._steady_since is None:
            self._steady_since = now

    def _nobody_for(self, now: float) -> bool:
        last_sign = max(self._anyone_seen_at, self._last_activity)
        return now - last_sign >= self.settings.absent_seconds

    def _draw_target(self) -> str:
        choices = [t for t in self.settings.targets if t != self._last_target]
        target = self._rng.choice(choices or self.settings.targets)
        self._last_target = target
        return target

    def _start_session(self, now: float) -> None:
        self.sessions += 1
        self._session_started = now
        self._sitter_seen_at = now
        self._last_activity = now
        self._retries = 0
        self.verdict = None
        self.notice = None
        self.target = self._draw_target()
        self._enter(State.PROMPT, now)

    def _cancel_capture(self, now: float) -> None:
        self._retries += 1
        if self._retries > self.settings.max_retries:
            self._end_session(now)
            return
        self.notice = Notice.FACE_LOST
        self._enter(State.PROMPT, now)

    def _turn_page(self, step: int, now: float) -> None:
        page = self.page + step
        if page < 0:
            self._enter(State.VERDICT, now)
        elif page >= self.page_count:
            self._enter(State.VERDICT, now)
        else:
            self.page = page
            self.entered_at = now

    def _forget_session(self) -> None:
        self.target = None
        self.verdict = None
        self.notice = None
        self.page = 0
        self._sitter_id = None
        self._steady_since = None

    def _end_session(self, now: float) -> None:
        self._forget_session()
        self.language_index = 0
        self._enter(State.ATTRACT, now)

    def _enter(self, state: State, now: float) -> None:
        # A notice explains why the prompt came back, so it lasts into the countdown
        # that follows; "one at a time" lasts while several faces are in view.
        if state not in (State.PROMPT, State.COUNTDOWN, State.CAPTURE):
            self.notice = None
        elif state == State.CAPTURE and self.notice != Notice.ONE_AT_A_TIME:
            self.notice = None
        self.state = state
        self.entered_at = now
        if state in (State.PROMPT, State.ATTRACT):
            self._steady_since = None
