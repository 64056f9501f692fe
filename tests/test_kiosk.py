"""The kiosk loop with the real pipeline on real video: threads, privacy, reload, out of order."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import dataclasses  # noqa: E402
import io  # noqa: E402
import random  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import pygame  # noqa: E402
import pytest  # noqa: E402

from expression_portrait import media  # noqa: E402
from expression_portrait.errors import ContentError, PrivacyError  # noqa: E402
from expression_portrait.kiosk import Kiosk  # noqa: E402
from expression_portrait.sources import ReplaySource  # noqa: E402
from expression_portrait.ui.content import load_languages  # noqa: E402
from expression_portrait.ui.display import HeadlessSink  # noqa: E402
from expression_portrait.ui.flow import Press, State  # noqa: E402
from expression_portrait.ui.settings import DisplaySettings, FlowSettings  # noqa: E402
from expression_portrait.vision.pipeline import Pipeline  # noqa: E402

SIZE = (1280, 720)


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline.from_manifest()


class GatedPipeline:
    """The real pipeline behind a gate the test opens, to stall the analysis thread."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.manifest = pipeline.manifest
        self.gate = threading.Event()
        self.calls = 0

    def analyze(self, frame):
        self.calls += 1
        self.gate.wait(10)
        return self.pipeline.analyze(frame)


def make_kiosk(tmp_path, pipeline, video="single_face.mp4", **flow):
    settings = FlowSettings(**flow)
    source = ReplaySource(media.path(video), realtime=False, loop=True)
    frames = []
    kiosk = Kiosk(source, pipeline, content=load_languages(settings.languages),
                  flow_settings=settings,
                  display_settings=DisplaySettings(sink="headless", output_dir=tmp_path,
                                                   width=SIZE[0], height=SIZE[1]),
                  sink=HeadlessSink(tmp_path, SIZE), on_frame=frames.append,
                  rng=random.Random(1))
    return kiosk, frames


def run_for(kiosk, seconds: float, until=None) -> None:
    deadline = time.monotonic() + seconds
    kiosk.run(until=lambda k: time.monotonic() > deadline or (until is not None and until(k)))


def test_display_loop_never_waits_on_analysis(tmp_path, pipeline):
    gated = GatedPipeline(pipeline)
    kiosk, frames = make_kiosk(tmp_path, gated)
    kiosk.source.start()
    try:
        run_for(kiosk, 10, until=lambda k: len(frames) >= 20)
    finally:
        gated.gate.set()
        kiosk.source.stop()

    assert len(frames) >= 20
    assert gated.calls == 1  # the analysis thread is still stuck on its first frame
    assert any(frames)  # camera frames kept arriving for the mirror
    assert kiosk.status().analysed_frames == 0


def test_session_starts_on_real_face_and_screenshot_is_private(tmp_path, pipeline):
    kiosk, frames = make_kiosk(tmp_path, pipeline, steady_seconds=0.5)
    kiosk.source.start()
    try:
        run_for(kiosk, 30, until=lambda k: k.flow.state == State.PROMPT)
        assert kiosk.flow.state == State.PROMPT

        with pytest.raises(PrivacyError, match="blurred"):
            kiosk.screenshot(blur_faces=False)
        png = kiosk.screenshot(blur_faces=True)
    finally:
        kiosk.source.stop()

    image = pygame.image.load(io.BytesIO(png))
    assert image.get_size() == SIZE
    status = kiosk.status()
    assert status.faces >= 1
    assert status.analysed_frames > 0
    assert "total" in status.latency_ms


def test_empty_room_screenshot_needs_no_blur(tmp_path, pipeline):
    kiosk, _ = make_kiosk(tmp_path, pipeline, video="no_face.mp4")
    kiosk.source.start()
    try:
        run_for(kiosk, 20, until=lambda k: k.status().analysed_frames >= 3)
        png = kiosk.screenshot(blur_faces=False)
    finally:
        kiosk.source.stop()

    assert kiosk.flow.state == State.ATTRACT
    assert png.startswith(b"\x89PNG")


def test_screenshot_from_another_thread_runs_in_loop(tmp_path, pipeline):
    kiosk, _ = make_kiosk(tmp_path, pipeline, video="no_face.mp4")
    results = []

    def technician():
        time.sleep(0.3)
        kiosk.out_of_order("maintenance", "replacing the camera")
        results.append(kiosk.screenshot(blur_faces=True))
        results.append(kiosk.status().state)
        kiosk.clear_out_of_order()
        results.append(kiosk.status().state)
        kiosk.stop()

    kiosk.source.start()
    helper = threading.Thread(target=technician)
    helper.start()
    try:
        run_for(kiosk, 10)
    finally:
        helper.join(5)
        kiosk.source.stop()

    assert results[0].startswith(b"\x89PNG")
    assert results[1:] == ["out_of_order", "attract"]


def test_no_camera_frames_shows_out_of_order_then_recovers(tmp_path, pipeline):
    kiosk, frames = make_kiosk(tmp_path, pipeline, no_frame_seconds=1)

    # The source was never started, so no frame arrives.
    run_for(kiosk, 15, until=lambda k: k.flow.state == State.OUT_OF_ORDER)
    assert kiosk.flow.state == State.OUT_OF_ORDER
    assert kiosk.flow.out_of_order_reason == "camera"
    assert not any(frames)

    kiosk.source.start()
    try:
        run_for(kiosk, 15, until=lambda k: k.flow.state == State.ATTRACT)
    finally:
        kiosk.source.stop()
    assert kiosk.flow.state == State.ATTRACT


def test_manual_out_of_order_survives_camera_recovery(tmp_path, pipeline):
    kiosk, _ = make_kiosk(tmp_path, pipeline)
    kiosk.out_of_order("models", "reinstall the model set")
    kiosk.source.start()
    try:
        run_for(kiosk, 1)
    finally:
        kiosk.source.stop()

    assert kiosk.flow.state == State.OUT_OF_ORDER
    assert kiosk.flow.technician_hint == "reinstall the model set"
    kiosk.clear_out_of_order()
    assert kiosk.flow.state == State.ATTRACT


def test_reload_rejects_overflowing_content_and_keeps_old(tmp_path, pipeline):
    kiosk, _ = make_kiosk(tmp_path, pipeline)
    bundle = load_languages(["en", "fr"])
    page = bundle["en"].pages["fool"]
    long_page = dataclasses.replace(page, body=page.body * 6)
    broken = {**bundle, "en": dataclasses.replace(bundle["en"], pages={**bundle["en"].pages,
                                                                       "fool": long_page})}

    with pytest.raises(ContentError, match=r"en\.toml: key pages\.fool\.body"):
        kiosk.reload(broken)
    assert kiosk.content["en"].pages["fool"].body == page.body

    kiosk.reload(settings=FlowSettings(languages=["fr", "en"]))
    assert kiosk.flow.language == "fr"


def test_buttons_reach_flow_through_queue(tmp_path, pipeline):
    kiosk, _ = make_kiosk(tmp_path, pipeline)
    kiosk.press(Press.LANGUAGE)
    kiosk.source.start()
    try:
        run_for(kiosk, 0.3)
    finally:
        kiosk.source.stop()

    assert kiosk.flow.language == "fr"


class SlowDrawClock:
    """A clock that stands still except while a frame is drawn (see draw_slowly)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingSink(HeadlessSink):
    """A headless sink that also records, per presented frame, the screen name and the drawn view."""

    def __init__(self, output_dir, size) -> None:
        super().__init__(output_dir, size, settle_frames=1)
        self.drawn = None
        self.presented: list[tuple[str, int]] = []

    def present(self, screen: str) -> None:
        self.presented.append((screen, self.drawn.countdown))
        super().present(screen)


def test_countdown_screen_names_match_drawn_number(tmp_path, pipeline):
    clock = SlowDrawClock()
    settings = FlowSettings(steady_seconds=0.5, prompt_seconds=1, lost_grace_seconds=5,
                            absent_seconds=60, no_frame_seconds=120)
    sink = RecordingSink(tmp_path, SIZE)
    kiosk = Kiosk(ReplaySource(media.path("single_face.mp4"), realtime=False, loop=True), pipeline,
                  content=load_languages(settings.languages), flow_settings=settings,
                  display_settings=DisplaySettings(sink="headless", output_dir=tmp_path,
                                                   width=SIZE[0], height=SIZE[1]),
                  sink=sink, clock=clock, rng=random.Random(1))
    draw = kiosk.renderer.draw

    def draw_slowly(view, surface):
        draw(view, surface)
        sink.drawn = view
        # A countdown frame takes 0.75 s to draw, so most draws cross a second boundary of
        # the countdown; other frames take 50 ms.
        clock.now += 0.75 if view.state == State.COUNTDOWN else 0.05

    kiosk.renderer.draw = draw_slowly
    kiosk.source.start()
    try:
        run_for(kiosk, 60, until=lambda k: k.flow.state == State.CAPTURE)
    finally:
        kiosk.source.stop()

    countdowns = [(name, number) for name, number in sink.presented if name.startswith("countdown-")]
    assert {number for _, number in countdowns} == {1, 2, 3}
    for name, number in countdowns:
        assert name.startswith(f"countdown-{number}-"), (name, number)
    saved = sorted(p.name.split("-", 1)[1] for p in sink.written if "countdown" in p.name)
    assert saved == ["countdown-1-en.png", "countdown-2-en.png", "countdown-3-en.png"]
    assert all(p.is_file() for p in sink.written)
