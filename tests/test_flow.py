"""The session state machine, driven by a fake clock and hand-made observations."""

from __future__ import annotations

import random

import numpy as np
import pytest
from pydantic import ValidationError

from expression_portrait.ui.flow import Flow, Notice, Observation, Press, State, observe
from expression_portrait.ui.settings import FlowSettings
from expression_portrait.vision.types import Detection, FaceResult, FrameResult

SITTER = Observation(faces=1, sitter=True, sitter_id=1, centred=True, position=(0.5, 0.5))
NOBODY = Observation(faces=0, sitter=False)
PAGES = 5


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_flow(**overrides) -> tuple[Flow, Clock]:
    clock = Clock()
    settings = FlowSettings(**overrides)
    return Flow(settings, page_count=PAGES, clock=clock, rng=random.Random(7)), clock


def run(flow: Flow, clock: Clock, seconds: float, obs: Observation | None = SITTER,
        step: float = 0.1) -> None:
    """Advance the clock, feeding one observation per step like a 10 fps pipeline."""
    end = clock.now + seconds
    while clock.now < end - 1e-9:
        clock.now = min(end, clock.now + step)
        if obs is not None:
            flow.observe(obs)
        flow.tick()


def to_state(flow: Flow, clock: Clock, state: State) -> None:
    """Walk a cooperative sitter through the session until ``state``."""
    for _ in range(400):
        if flow.state == state:
            return
        if flow.capture_due:
            flow.finish_capture("verdict")
            continue
        run(flow, clock, 0.1)
    raise AssertionError(f"never reached {state}, stuck in {flow.state}")


def test_happy_path_reaches_every_state():
    flow, clock = make_flow()
    seen = [flow.state]

    to_state(flow, clock, State.PROMPT)
    seen.append(flow.state)
    to_state(flow, clock, State.COUNTDOWN)
    seen.append(flow.state)
    to_state(flow, clock, State.CAPTURE)
    seen.append(flow.state)
    run(flow, clock, flow.settings.capture_seconds + 0.05)
    assert flow.capture_due
    flow.finish_capture("verdict")
    seen.append(flow.state)
    flow.press(Press.NEXT)
    seen.append(flow.state)

    assert seen == [State.ATTRACT, State.PROMPT, State.COUNTDOWN, State.CAPTURE,
                    State.VERDICT, State.EXPLANATIONS]
    assert flow.verdict == "verdict"
    assert flow.target in flow.settings.targets


def test_prompt_waits_for_steady_seconds():
    flow, clock = make_flow(steady_seconds=2.0)

    run(flow, clock, 1.8)
    assert flow.state == State.ATTRACT
    run(flow, clock, 0.4)

    assert flow.state == State.PROMPT


def test_moving_or_off_centre_sitter_gets_no_prompt():
    flow, clock = make_flow()
    off_centre = Observation(faces=1, sitter=True, sitter_id=1, centred=False, position=(0.9, 0.5))

    run(flow, clock, 3, off_centre)
    assert flow.state == State.ATTRACT

    # Jumping between two positions every frame is not steady either.
    for i in range(30):
        clock.now += 0.1
        x = 0.4 if i % 2 else 0.6
        flow.observe(Observation(faces=1, sitter=True, sitter_id=1, centred=True, position=(x, 0.5)))
        flow.tick()
    assert flow.state == State.ATTRACT


def test_countdown_numbers_go_down():
    flow, clock = make_flow(countdown_seconds=3)
    to_state(flow, clock, State.COUNTDOWN)
    numbers = []

    while flow.state == State.COUNTDOWN:
        numbers.append(flow.countdown_number())
        run(flow, clock, 0.1)

    assert sorted(set(numbers), reverse=True) == [3, 2, 1]
    assert numbers == sorted(numbers, reverse=True)


def test_targets_never_repeat_immediately():
    flow, clock = make_flow(targets=["angry", "happy", "sad"], rest_seconds=0,
                            session_timeout_seconds=30)
    targets = []

    for _ in range(40):
        to_state(flow, clock, State.PROMPT)
        targets.append(flow.target)
        flow.press(Press.RESTART)
        clock.now += 1

    assert len(set(targets)) == 3
    assert all(a != b for a, b in zip(targets, targets[1:], strict=False))


def test_single_target_may_repeat():
    flow, clock = make_flow(targets=["disgust"], rest_seconds=0)

    to_state(flow, clock, State.PROMPT)
    flow.press(Press.RESTART)
    clock.now += 1
    to_state(flow, clock, State.PROMPT)

    assert flow.target == "disgust"


def test_visitor_leaves_mid_countdown():
    flow, clock = make_flow(lost_grace_seconds=0.5, absent_seconds=3)
    to_state(flow, clock, State.COUNTDOWN)

    run(flow, clock, 0.6, NOBODY)
    assert flow.state == State.PROMPT
    assert flow.notice == Notice.FACE_LOST
    assert flow.target is not None

    run(flow, clock, 3, NOBODY)
    assert flow.state == State.ATTRACT
    assert flow.target is None


def test_visitor_returns_after_cancelled_countdown():
    flow, clock = make_flow(lost_grace_seconds=0.5)
    to_state(flow, clock, State.COUNTDOWN)
    target = flow.target

    run(flow, clock, 0.6, NOBODY)
    assert flow.state == State.PROMPT
    to_state(flow, clock, State.COUNTDOWN)

    assert flow.target == target


def test_brief_dropout_does_not_cancel_countdown():
    flow, clock = make_flow(lost_grace_seconds=0.7, countdown_seconds=3)
    to_state(flow, clock, State.COUNTDOWN)

    run(flow, clock, 0.4, NOBODY)
    run(flow, clock, 0.2)

    assert flow.state == State.COUNTDOWN


def test_second_person_shows_notice_and_session_goes_on():
    flow, clock = make_flow()
    to_state(flow, clock, State.COUNTDOWN)
    two = Observation(faces=2, sitter=True, sitter_id=1, centred=True, position=(0.5, 0.5))

    run(flow, clock, 0.3, two)
    assert flow.state == State.COUNTDOWN
    assert flow.notice == Notice.ONE_AT_A_TIME

    run(flow, clock, 0.2)
    assert flow.notice is None


def test_new_sitter_restarts_at_prompt():
    flow, clock = make_flow()
    to_state(flow, clock, State.CAPTURE)
    other = Observation(faces=2, sitter=True, sitter_id=2, centred=True, position=(0.5, 0.5))

    run(flow, clock, 0.1, other)

    assert flow.state == State.PROMPT
    assert flow.notice == Notice.NEW_SITTER


def test_refound_sitter_keeps_session():
    flow, clock = make_flow()
    to_state(flow, clock, State.COUNTDOWN)
    same_face_new_track = Observation(faces=1, sitter=True, sitter_id=9, centred=True,
                                      position=(0.5, 0.5))

    run(flow, clock, 0.3, same_face_new_track)

    assert flow.state == State.COUNTDOWN
    assert flow.notice is None


def test_second_person_does_not_interrupt_verdict():
    flow, clock = make_flow()
    to_state(flow, clock, State.VERDICT)
    other = Observation(faces=2, sitter=True, sitter_id=2, centred=True, position=(0.5, 0.5))

    run(flow, clock, 2, other)

    assert flow.state == State.VERDICT


def test_face_lost_during_capture_retries_then_gives_up():
    flow, clock = make_flow(max_retries=1, lost_grace_seconds=0.5, absent_seconds=10)
    to_state(flow, clock, State.CAPTURE)

    run(flow, clock, 0.6, NOBODY)
    assert flow.state == State.PROMPT
    assert flow.notice == Notice.FACE_LOST

    to_state(flow, clock, State.CAPTURE)
    run(flow, clock, 0.6, NOBODY)
    assert flow.state == State.ATTRACT


def test_capture_without_usable_frames_counts_as_lost():
    flow, clock = make_flow(max_retries=0)
    to_state(flow, clock, State.CAPTURE)
    run(flow, clock, flow.settings.capture_seconds + 0.05)

    flow.finish_capture(None)

    assert flow.state == State.ATTRACT
    assert flow.verdict is None


def test_sitter_gone_ends_verdict():
    flow, clock = make_flow(absent_seconds=3, verdict_seconds=60)
    to_state(flow, clock, State.VERDICT)

    run(flow, clock, 2.5, NOBODY)
    assert flow.state == State.VERDICT
    run(flow, clock, 0.6, NOBODY)

    assert flow.state == State.ATTRACT
    assert flow.verdict is None


def test_press_counts_as_presence():
    flow, clock = make_flow(absent_seconds=3, verdict_seconds=60, page_seconds=60)
    to_state(flow, clock, State.VERDICT)

    run(flow, clock, 2.5, NOBODY)
    flow.press(Press.NEXT)
    run(flow, clock, 2.5, NOBODY)

    assert flow.state == State.EXPLANATIONS


def test_total_timeout_ends_session():
    flow, clock = make_flow(session_timeout_seconds=30, verdict_seconds=300, page_seconds=300)
    started = clock.now
    to_state(flow, clock, State.VERDICT)

    run(flow, clock, 29.5 - (clock.now - started))
    assert flow.state == State.VERDICT
    run(flow, clock, 2)

    assert flow.state == State.ATTRACT


def test_pages_auto_advance_then_session_ends():
    flow, clock = make_flow(verdict_seconds=5, page_seconds=4, session_timeout_seconds=600)
    to_state(flow, clock, State.VERDICT)
    pages = []

    for _ in range(200):
        run(flow, clock, 0.5)
        if flow.state == State.EXPLANATIONS and flow.page not in pages:
            pages.append(flow.page)
        if flow.state == State.ATTRACT:
            break

    assert pages == list(range(PAGES))
    assert flow.state == State.ATTRACT


def test_next_and_back_page_through():
    flow, clock = make_flow()
    to_state(flow, clock, State.VERDICT)

    flow.press(Press.BACK)
    assert flow.state == State.VERDICT
    clock.now += 1
    flow.press(Press.NEXT)
    clock.now += 1
    flow.press(Press.NEXT)
    assert (flow.state, flow.page) == (State.EXPLANATIONS, 1)
    clock.now += 1
    flow.press(Press.BACK)
    clock.now += 1
    flow.press(Press.BACK)
    assert flow.state == State.VERDICT

    for _ in range(PAGES + 1):
        clock.now += 1
        flow.press(Press.NEXT)
    assert flow.state == State.VERDICT


def test_mashed_buttons_are_rate_limited():
    flow, clock = make_flow(press_interval_seconds=0.25)
    to_state(flow, clock, State.VERDICT)
    clock.now += 1

    accepted = 0
    for _ in range(50):
        accepted += flow.press(Press.NEXT)
        clock.now += 0.002

    assert accepted == 1
    assert (flow.state, flow.page) == (State.EXPLANATIONS, 0)


@pytest.mark.parametrize("state", [s for s in State if s != State.OUT_OF_ORDER])
def test_buttons_in_any_state_keep_flow_valid(state):
    flow, clock = make_flow(press_interval_seconds=0)
    to_state(flow, clock, state)
    rng = random.Random(3)

    for _ in range(300):
        flow.press(rng.choice(list(Press)))
        clock.now += rng.choice([0.0, 0.01, 0.3])
        flow.observe(SITTER)
        flow.tick()
        if flow.capture_due:
            flow.finish_capture("verdict")
        assert 0 <= flow.page < PAGES
        assert flow.state != State.OUT_OF_ORDER
        assert (flow.target is None) == (flow.state == State.ATTRACT)
        assert (flow.verdict is not None) == (flow.state in (State.VERDICT, State.EXPLANATIONS))


@pytest.mark.parametrize("state", [State.PROMPT, State.COUNTDOWN, State.CAPTURE])
def test_next_and_back_ignored_before_verdict(state):
    flow, clock = make_flow()
    to_state(flow, clock, state)

    assert not flow.press(Press.NEXT)
    assert not flow.press(Press.BACK)
    assert flow.state == state


def test_restart_ends_session_from_any_session_state():
    for state in (State.PROMPT, State.COUNTDOWN, State.CAPTURE, State.VERDICT, State.EXPLANATIONS):
        flow, clock = make_flow()
        to_state(flow, clock, state)
        if state == State.EXPLANATIONS:
            assert flow.state == State.EXPLANATIONS

        assert flow.press(Press.RESTART)
        assert flow.state == State.ATTRACT


def test_language_cycles_and_resets_after_session():
    flow, clock = make_flow(languages=["en", "fr"])

    flow.press(Press.LANGUAGE)
    assert flow.language == "fr"
    to_state(flow, clock, State.VERDICT)
    assert flow.language == "fr"
    flow.press(Press.RESTART)

    assert flow.language == "en"


def test_rest_after_session_before_next_prompt():
    flow, clock = make_flow(rest_seconds=5)
    to_state(flow, clock, State.PROMPT)
    flow.press(Press.RESTART)

    run(flow, clock, 4)
    assert flow.state == State.ATTRACT
    run(flow, clock, 2)

    assert flow.state == State.PROMPT


def test_out_of_order_blocks_everything_until_cleared():
    flow, clock = make_flow()
    to_state(flow, clock, State.COUNTDOWN)

    flow.out_of_order("camera", "check the ribbon cable")
    assert flow.state == State.OUT_OF_ORDER
    assert flow.target is None
    for button in Press:
        assert not flow.press(button)
    run(flow, clock, 10)
    assert flow.state == State.OUT_OF_ORDER
    assert flow.technician_hint == "check the ribbon cable"

    flow.clear_out_of_order()
    assert flow.state == State.ATTRACT
    assert flow.out_of_order_reason == ""


def test_observe_from_frame_result():
    settings = FlowSettings()
    detection = Detection(box=np.array([270, 120, 370, 240], np.float32),
                          keypoints=np.zeros((6, 2), np.float32), score=0.9)
    face = FaceResult(detection=detection, track_id=4, heads={})
    centred = FrameResult(frame_size=(640, 360), faces=[face], sitter=face)
    side = Detection(box=np.array([560, 130, 640, 250], np.float32),
                     keypoints=np.zeros((6, 2), np.float32), score=0.9)
    side_face = FaceResult(detection=side, track_id=5, heads={})

    obs = observe(centred, settings)
    assert obs == Observation(faces=1, sitter=True, sitter_id=4, centred=True,
                              position=pytest.approx((0.5, 0.5)))
    assert not observe(FrameResult((640, 360), [side_face], side_face), settings).centred
    assert observe(FrameResult((640, 360), [], None), settings) == NOBODY


@pytest.mark.parametrize("field, value", [
    ("targets", ["joy"]), ("targets", []), ("targets", ["sad", "sad"]),
    ("steady_seconds", 0), ("countdown_seconds", 0), ("languages", ["EN"]), ("unknown", 1),
])
def test_settings_reject_bad_values(field, value):
    with pytest.raises(ValidationError):
        FlowSettings(**{field: value})


def test_every_setting_has_description():
    for name, field in FlowSettings.model_fields.items():
        assert field.description, name
