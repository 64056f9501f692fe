"""``expression-portrait analyze``: text and JSON output on real media, and unreadable files."""

from __future__ import annotations

import json

import pytest

from expression_portrait import media
from expression_portrait.cli import main


def analyze(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["analyze", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_output_follows_schema(capsys):
    code, out, _ = analyze(capsys, str(media.path("astronaut.png")), "--json")

    assert code == 0
    document = json.loads(out)
    assert document["schema"] == 1
    assert set(document["heads"]) == {"emotion", "age", "gender"}
    [file] = document["files"]
    assert file["kind"] == "image"
    [frame] = file["frames"]
    assert frame["size"] == [512, 512]
    [face] = frame["faces"]
    assert face["sitter"] is True
    assert len(face["box"]) == 4
    assert set(face["keypoints"]) == {"left_eye", "right_eye", "nose_tip", "mouth",
                                      "left_ear_tragion", "right_ear_tragion"}
    assert sum(face["heads"]["emotion"]["probabilities"].values()) == pytest.approx(1.0, abs=0.01)
    assert 25 <= face["heads"]["age"]["expected"] <= 60
    low, high = face["heads"]["age"]["interval_80"]
    assert low < face["heads"]["age"]["expected"] < high
    assert face["heads"]["gender"]["top"] in ("female", "male")
    assert frame["timings_ms"]["total"] > 0


def test_video_frames_share_track_id(capsys):
    code, out, _ = analyze(capsys, str(media.path("single_face.mp4")), "--json", "--every", "12")

    assert code == 0
    frames = json.loads(out)["files"][0]["frames"]
    assert [f["index"] for f in frames] == list(range(0, 72, 12))
    ids = {face["track_id"] for f in frames for face in f["faces"]}
    assert len(ids) == 1


def test_each_file_numbers_faces_from_one(capsys):
    code, out, _ = analyze(capsys, str(media.path("single_face.jpg")), str(media.path("astronaut.png")), "--json")

    assert code == 0
    first, second = json.loads(out)["files"]
    assert [face["track_id"] for face in first["frames"][0]["faces"]] == [1]
    assert [face["track_id"] for face in second["frames"][0]["faces"]] == [1]


def test_text_output_names_file_and_judgments(capsys):
    path = str(media.path("0-f15-hao-ph.jpg"))

    code, out, _ = analyze(capsys, path)

    assert code == 0
    assert path in out
    assert "emotion happy" in out
    assert "(sitter)" in out


def test_no_face_is_reported(capsys):
    code, out, _ = analyze(capsys, str(media.path("no_face.mp4")), "--max-frames", "3")

    assert code == 0
    assert out.count("no face") == 3


@pytest.mark.parametrize(("name", "content", "problem"), [
    ("missing.jpg", None, "file not found"),
    ("truncated.jpg", "jpeg", "not a readable image"),
    ("text.png", b"this is not an image", "not a readable image"),
    ("truncated.mp4", "mp4", "not a readable video"),
])
def test_unreadable_file_names_the_file(capsys, tmp_path, name, content, problem):
    path = tmp_path / name
    if content == "jpeg":
        path.write_bytes(media.path("single_face.jpg").read_bytes()[:300])
    elif content == "mp4":
        path.write_bytes(media.path("single_face.mp4").read_bytes()[:20000])
    elif content is not None:
        path.write_bytes(content)

    code, out, err = analyze(capsys, str(path), str(media.path("astronaut.png")), "--json")

    assert code == 1
    assert str(path) in err
    assert problem in err
    files = json.loads(out)["files"]
    assert problem in files[0]["error"]
    assert files[1]["frames"][0]["faces"]  # the good file is still analysed


@pytest.mark.parametrize(("option", "value"), [("--min-score", "1.5"), ("--every", "0")])
def test_invalid_option_is_named(capsys, option, value):
    code, _, err = analyze(capsys, str(media.path("astronaut.png")), option, value)

    assert code == 1
    assert option in err
    assert value in err
