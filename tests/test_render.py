"""Every screen in every language at 1920x1080, 1280x720 and portrait 1080x1920."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import re  # noqa: E402

import numpy as np  # noqa: E402
import pygame  # noqa: E402
import pytest  # noqa: E402

from expression_portrait import media  # noqa: E402
from expression_portrait.decode import load_image  # noqa: E402
from expression_portrait.ui import images  # noqa: E402
from expression_portrait.ui.content import load_languages  # noqa: E402
from expression_portrait.ui.display import HeadlessSink  # noqa: E402
from expression_portrait.ui.flow import State  # noqa: E402
from expression_portrait.ui.layout import Fonts  # noqa: E402
from expression_portrait.ui.screens import (  # noqa: E402
    ExtraHead,
    Renderer,
    View,
    check_fits,
    sample_verdict,
    sample_views,
    session_pages,
)
from expression_portrait.ui.settings import SUPPORTED_RESOLUTIONS, FlowSettings  # noqa: E402

LANGUAGES = FlowSettings().languages
BUNDLE = load_languages(LANGUAGES)
RACE_HEAD = ExtraHead("race", "Race", "an operator's dataset", "Trained on a dataset the operator "
                      "describes here, with its sources.", "operator", ("white", "black", "latinx", "asian"))
STYLE_HEAD = ExtraHead("hair", "Hair length", "an operator's dataset", "Another operator model.",
                       "", ("short", "long"))


@pytest.fixture(scope="module")
def renderer():
    return Renderer(Fonts())


@pytest.fixture(scope="module")
def face_photo():
    return load_image(media.path("single_face.jpg"))


def screen_id(view: View) -> str:
    return f"{view.state.value}-{view.page}" if view.state == State.EXPLANATIONS else view.state.value


@pytest.mark.parametrize("size", SUPPORTED_RESOLUTIONS, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_screen_fits(renderer, language, size, face_photo):
    content = BUNDLE[language]
    surface = pygame.Surface(size)
    views = sample_views(content, next_language="Français")
    assert {v.state for v in views} == set(State)

    for view in views:
        view.frame = face_photo
        canvas = renderer.draw(view, surface, strict=True)

        assert canvas.overflows == [], screen_id(view)
        assert canvas.outside() == [], screen_id(view)
        assert canvas.drawn, screen_id(view)


@pytest.mark.parametrize("size", SUPPORTED_RESOLUTIONS, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("language", LANGUAGES)
def test_extra_heads_fit_and_replace_race_line(renderer, language, size):
    content = BUNDLE[language]
    check_fits(content, [RACE_HEAD, STYLE_HEAD], sizes=[size])
    verdict = sample_verdict([RACE_HEAD, STYLE_HEAD])
    pages = session_pages(content, [RACE_HEAD, STYLE_HEAD])

    canvas = renderer.draw(View(State.VERDICT, content, verdict=verdict, pages=pages, target="sad"),
                           pygame.Surface(size), strict=True)
    keys = {what for _, what in canvas.drawn}

    assert "strings.race_line" not in keys
    assert "strings.extra_line" in keys
    assert [p.id for p in pages].count("extra:race") == 1
    assert [p.id for p in pages].count("extra:hair") == 1


def test_race_line_points_to_race_page(renderer):
    content = BUNDLE["en"]
    pages = session_pages(content, [])
    race_number = [p.id for p in pages].index("race") + 1

    text = content.text("race_line", page=race_number, title=content.pages["race"].title)
    canvas = renderer.draw(View(State.VERDICT, content, verdict=sample_verdict(), pages=pages,
                                target="sad"), pygame.Surface((1920, 1080)), strict=True)

    assert f"page {race_number}" in text
    assert any(what == "strings.race_line" for _, what in canvas.drawn)


def test_attract_shows_the_mirror(renderer, face_photo):
    content = BUNDLE["en"]
    surface = pygame.Surface((1280, 720))

    renderer.draw(View(State.ATTRACT, content, frame=face_photo, mirror=True), surface)
    mirrored = pygame.surfarray.array3d(surface).copy()
    renderer.draw(View(State.ATTRACT, content, frame=face_photo, mirror=False), surface)
    plain = pygame.surfarray.array3d(surface)

    top = slice(0, 300)  # above the title band
    assert mirrored[:, top].std() > 20
    assert np.abs(mirrored[::-1, top].astype(int) - plain[:, top].astype(int)).mean() < 3


def test_chips_keep_visible_pixels():
    chip = np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)

    big = pygame.surfarray.array3d(images.pixelated(images.to_surface(chip), (256, 256)))

    blocks = big.reshape(32, 8, 32, 8, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()
    assert (big[::8, ::8].transpose(1, 0, 2) == chip).all()


def test_stylised_portrait_is_high_contrast_gray(face_photo):
    portrait = images.stylise(face_photo)

    assert portrait.ndim == 2
    assert len(np.unique(portrait)) <= 8
    assert portrait.min() == 0
    assert portrait.max() == 255


def test_blur_removes_detail(face_photo):
    sharp = images.to_surface(face_photo)

    soft = pygame.surfarray.array3d(images.blurred(sharp)).astype(float)
    original = pygame.surfarray.array3d(sharp).astype(float)

    def detail(a):
        return np.abs(np.diff(a, axis=0)).mean()

    assert detail(soft) < detail(original) / 3


def test_square_crop_stays_inside_frame(face_photo):
    height, width = face_photo.shape[:2]
    corner = np.array([0, 0, width * 0.4, height * 0.4], np.float32)

    crop = images.square_crop(face_photo, corner)

    assert crop.shape[0] == crop.shape[1] > 0


def test_headless_sink_unique_saves_each_name_once(tmp_path):
    sink = HeadlessSink(tmp_path, (64, 36), settle_frames=1, unique=True)
    sink.open()

    for screen in ("verdict-en", "explanations-01-saw-en", "verdict-en", "verdict-fr"):
        sink.present(screen)
    sink.close()

    assert [p.name for p in sink.written] == ["01-verdict-en.png", "02-explanations-01-saw-en.png",
                                              "03-verdict-fr.png"]


def test_headless_sink_saves_one_png_per_screen(tmp_path):
    sink = HeadlessSink(tmp_path, (320, 180), settle_frames=3)
    surface = sink.open()

    for screen, frames in (("attract-en", 10), ("prompt-en", 1), ("countdown-3-en", 4)):
        for value in range(frames):
            surface.fill((value * 20, 0, 0))
            sink.present(screen)
    sink.close()

    assert [p.name for p in sink.written] == ["01-attract-en.png", "02-prompt-en.png",
                                              "03-countdown-3-en.png"]
    assert all(p.stat().st_size > 0 for p in sink.written)
    saved = pygame.image.load(str(sink.written[0]))
    assert saved.get_at((0, 0))[0] == 40  # the third frame, once the screen settled


@pytest.mark.parametrize("language", LANGUAGES)
def test_content_fits_with_pygame_default_font(language, monkeypatch, tmp_path):
    from expression_portrait.ui import layout

    monkeypatch.setattr(layout, "DEJAVU_FOLDERS", (tmp_path / "no-fonts",))
    fonts = Fonts()

    assert fonts.paths[False] is None
    check_fits(BUNDLE[language], [RACE_HEAD], fonts=fonts)


def test_window_sink_opens_and_presents(monkeypatch):
    from expression_portrait.ui.display import WindowSink, open_sink
    from expression_portrait.ui.settings import DisplaySettings

    sink = WindowSink(DisplaySettings(sink="window", width=640, height=360), "window")
    surface = sink.open()
    try:
        assert surface.get_size() == (640, 360)
        sink.present("attract-en")
        assert isinstance(sink.events(), list)
    finally:
        sink.close()

    monkeypatch.setenv("DISPLAY", ":0")
    assert open_sink(DisplaySettings()).name == "window"
    monkeypatch.delenv("DISPLAY")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert open_sink(DisplaySettings()).name == "kmsdrm"
    assert isinstance(open_sink(DisplaySettings(sink="headless", output_dir=".")), HeadlessSink)


def test_headless_needs_explicit_output_dir():
    from pydantic import ValidationError

    from expression_portrait.ui.settings import DisplaySettings

    with pytest.raises(ValidationError, match="output_dir"):
        DisplaySettings(sink="headless")
    assert DisplaySettings().sink == "auto"


def test_operator_race_head_replaces_not_estimated(tmp_path, face_photo):
    """An extra head named race in the manifest shows its answer and gets its own page."""
    import json
    import shutil

    from expression_portrait.models import default_models_dir
    from expression_portrait.ui.screens import extra_heads_from_manifest
    from expression_portrait.vision.aggregate import CaptureAggregator
    from expression_portrait.vision.pipeline import Pipeline

    source = default_models_dir()
    manifest = json.loads((source / "manifest.json").read_text())
    for entry in manifest["models"].values():
        shutil.copy(source / entry["file"], tmp_path / entry["file"])
    # The gender model's file under another name and labels stands in for an operator's model.
    race = json.loads(json.dumps(manifest["models"]["gender"]))
    race.update(title="Race (operator)", dataset="Operator test set",
                training_data="An operator's description of the training data, with its source.")
    race["outputs"]["labels"] = ["group a", "group b"]
    manifest["models"]["race"] = race
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))

    pipeline = Pipeline.from_manifest(tmp_path)
    extra = extra_heads_from_manifest(pipeline.manifest)
    aggregator = CaptureAggregator(1)
    aggregator.add(pipeline.analyze(face_photo), face_photo)
    verdict = aggregator.verdict()
    content = BUNDLE["en"]
    pages = session_pages(content, extra)
    renderer = Renderer(Fonts())

    assert [head.name for head in extra] == ["race"]
    assert verdict.heads["race"].labels == ("group a", "group b")
    for size in SUPPORTED_RESOLUTIONS:
        canvas = renderer.draw(View(State.VERDICT, content, verdict=verdict, pages=pages,
                                    target="happy"), pygame.Surface(size), strict=True)
        keys = {what for _, what in canvas.drawn}
        assert "strings.race_line" not in keys
        assert "strings.extra_line" in keys
        page = [p.id for p in pages].index("extra:race")
        canvas = renderer.draw(View(State.EXPLANATIONS, content, verdict=verdict, pages=pages,
                                    page=page), pygame.Surface(size), strict=True)
        keys = {what for _, what in canvas.drawn}
        assert "manifest race.training_data" in keys
        assert canvas.outside() == []


def test_wrap_never_breaks_at_no_break_space(renderer):
    from expression_portrait.ui.layout import wrap

    font = renderer.fonts.get(30, False)
    text = "Pourquoi\u202f? " * 20 + "la machine voit la tristesse (44\u202f%)."
    width = font.size("Pourquoi\u202f? Pourquoi")[0]

    lines = wrap(text, font, width)

    assert len(lines) > 1
    for line in lines:
        assert not line.startswith(("?", "%", "\u202f")), line
    assert "".join(lines).count("\u202f") == text.count("\u202f")


def test_french_emotion_values_use_language_percent():
    from expression_portrait.ui.screens import _head_values

    head = sample_verdict().heads["emotion"]

    assert "\u202f%" in _head_values(BUNDLE["fr"], head)
    assert re.search(r"\d%", _head_values(BUNDLE["en"], head))
