"""The demo end to end: the real kiosk on a real video reaches a real verdict."""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import re  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from expression_portrait import cli  # noqa: E402
from expression_portrait.commands.demo import make_contact_sheet, parse_size  # noqa: E402
from expression_portrait.errors import ConfigError  # noqa: E402
from expression_portrait.ui.content import load_languages  # noqa: E402
from expression_portrait.ui.settings import EMOTION_LABELS  # noqa: E402


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_demo_reaches_real_verdict(tmp_path, capsys, monkeypatch):
    import expression_portrait.commands.demo as demo

    results = []
    original = demo.run_demo
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: results.append(original(*a, **k)) or results[-1])
    output = tmp_path / "out"

    code = cli.main(["demo", "--output", str(output), "--size", "1280x720"])

    assert code == 0
    printed = capsys.readouterr().out
    assert str(output.resolve()) in printed
    result = results[0]
    verdict = result.verdict
    names = [p.name for p in result.screens]

    # The verdict is a real judgment of the video's face.
    emotion = verdict.heads["emotion"]
    assert emotion.labels == EMOTION_LABELS
    assert emotion.probabilities.sum() == pytest.approx(1, abs=1e-3)
    assert emotion.top[1] > 1 / 7
    age = verdict.heads["age"]
    assert 0 <= age.expected <= 80
    assert age.interval[0] <= age.expected <= age.interval[1]
    assert verdict.heads["gender"].labels == ("female", "male")
    assert verdict.frames_used >= 1
    height, width = verdict.frame.shape[:2]
    # The detector's box may reach past the frame edge (a chin below it); its centre may not.
    cx, cy = verdict.face.detection.center
    assert 0 <= cx <= width
    assert 0 <= cy <= height
    assert verdict.face.detection.width > 0.1 * width
    assert verdict.face.chips["emotion"].shape == (64, 64)
    assert verdict.face.chips["gender"].shape == (32, 32, 3)
    assert result.target in EMOTION_LABELS

    # Every screen was reached and saved once; a notice such as face_lost may follow the state.
    def reached(screen: str, language: str) -> bool:
        pattern = re.compile(rf"\d\d-{screen}(-[a-z_]+)?-{language}\.png")
        return any(pattern.fullmatch(name) for name in names)

    assert len(names) == len(set(n[3:] for n in names))
    for screen in ("attract", "prompt", "capture", "verdict"):
        assert reached(screen, "en"), screen
    # The demo runs on a simulated clock, so every countdown number is drawn however slow
    # the machine is.
    for number in (3, 2, 1):
        assert reached(f"countdown-{number}", "en"), number
    assert reached("verdict", "fr")
    assert any("out_of_order" in name for name in names)
    pages = load_languages(["en"])["en"].order
    for number, page_id in enumerate([p for p in pages if p != "extra_heads"], start=1):
        assert reached(f"explanations-{number:02d}-{page_id}", "en"), page_id
    assert all(Image.open(p).size == (1280, 720) for p in result.screens)
    assert result.contact_sheet.is_file()
    assert result.seconds < 120
    assert printed.startswith(f"asked for {load_languages(['en'])['en'].emotion(result.target)};")


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_demo_verdict_is_reproducible(tmp_path):
    from expression_portrait.commands.demo import run_demo

    runs = [run_demo(tmp_path / f"run{index}", size=(640, 360), seed=3, contact_sheet=False,
                     stop_at_verdict=True)
            for index in range(2)]

    first, second = (run.verdict for run in runs)
    assert runs[0].target == runs[1].target
    assert [p.name for p in runs[0].screens] == [p.name for p in runs[1].screens]
    assert runs[0].screens[-1].name.startswith(f"{len(runs[0].screens):02d}-verdict-en")
    assert first.frames_used == second.frames_used
    for name, head in first.heads.items():
        np.testing.assert_array_equal(head.probabilities, second.heads[name].probabilities)


def test_contact_sheet_holds_every_screen(tmp_path):
    paths = []
    for index, shade in enumerate((0, 120, 240)):
        path = tmp_path / f"0{index}-screen.png"
        Image.fromarray(np.full((90, 160, 3), shade, np.uint8)).save(path)
        paths.append(path)

    sheet = make_contact_sheet(paths, tmp_path / "sheet.png", columns=2, thumb_width=160)

    with Image.open(sheet) as image:
        assert image.width == 2 * (160 + 12) + 12
        pixels = np.asarray(image)
    assert (pixels[12 + 45, 12 + 80 + 172] == 120).all()


def test_size_must_be_width_by_height():
    assert parse_size("1080x1920") == (1080, 1920)
    with pytest.raises((ConfigError, argparse.ArgumentTypeError), match="WIDTHxHEIGHT"):
        parse_size("big")


def test_unknown_video_is_named(tmp_path, capsys):
    code = cli.main(["demo", "--video", str(tmp_path / "missing.mp4"), "--output", str(tmp_path)])

    assert code != 0
    assert "missing.mp4" in capsys.readouterr().err


def test_demo_output_is_gitignored():
    ignore = (Path(__file__).resolve().parents[1] / ".gitignore").read_text()

    assert "/demo-output/" in ignore.splitlines()
