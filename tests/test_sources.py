"""The replay source: real recordings delivered like camera frames, newest first."""

import time

import pytest

from expression_portrait import media
from expression_portrait.errors import CameraError, DecodeError
from expression_portrait.sources import Frame, LatestFrameSlot, ReplaySource, downscale


def test_replay_video_frames_and_sizes():
    with ReplaySource(media.path("single_face.mp4"), realtime=False, loop=False,
                      analysis_width=320) as source:
        frames = []
        while (frame := source.read(timeout=2.0)) is not None:
            frames.append(frame)

    assert len(frames) >= 1
    first = frames[0]
    assert first.analysis.shape[1] == 320
    assert first.display.shape[1] >= first.analysis.shape[1]
    assert first.scale == pytest.approx(first.display.shape[1] / 320)
    assert not first.display.flags.writeable
    assert [f.sequence for f in frames] == sorted({f.sequence for f in frames})
    assert source.finished


def test_replay_slow_reader_drops_frames():
    with ReplaySource(media.path("single_face.mp4"), realtime=False, loop=False) as source:
        first = source.read(timeout=2.0)
        time.sleep(0.5)
        later = source.read(timeout=2.0)

    assert first is not None and later is not None
    assert later.sequence > first.sequence + 1
    assert source.dropped > 0


def test_replay_loops_past_the_end():
    from expression_portrait import decode

    length = len(decode.load_frames(media.path("no_face.mp4")))
    with ReplaySource(media.path("no_face.mp4"), realtime=False, loop=True) as source:
        last = -1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and last < length + 5:
            frame = source.read(timeout=2.0)
            assert frame is not None
            last = frame.sequence
        still_running = not source.finished

    assert last >= length + 5
    assert still_running


def test_replay_realtime_pacing():
    with ReplaySource(media.path("single_face.mp4"), realtime=True, loop=False) as source:
        start = time.monotonic()
        count = 0
        while count < 10 and source.read(timeout=2.0) is not None:
            count += 1
        elapsed = time.monotonic() - start

    # At the file's own frame rate (25-30 fps) ten frames cannot arrive in under 0.2 s.
    assert count == 10
    assert elapsed > 0.2


def test_replay_image_folder(tmp_path):
    for name in ("single_face.jpg", "astronaut.png"):
        (tmp_path / name).write_bytes(media.path(name).read_bytes())

    with ReplaySource(tmp_path, realtime=False, loop=False) as source:
        frames = []
        while (frame := source.read(timeout=2.0)) is not None:
            frames.append(frame)

    assert 1 <= len(frames) <= 2


def test_replay_missing_path_rejected(tmp_path):
    with pytest.raises(DecodeError, match="missing.mp4: replay source not found"):
        ReplaySource(tmp_path / "missing.mp4")


def test_replay_empty_folder_rejected(tmp_path):
    with pytest.raises(DecodeError, match="folder contains no images"):
        ReplaySource(tmp_path)


def test_replay_damaged_video_raises_camera_error(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)

    with pytest.raises(DecodeError, match="broken.mp4"):
        ReplaySource(broken).start()


def test_replay_read_before_start():
    source = ReplaySource(media.path("no_face.mp4"))

    with pytest.raises(CameraError, match="read\\(\\) before start\\(\\)"):
        source.read(timeout=0.1)


def test_slot_returns_none_on_timeout():
    slot = LatestFrameSlot()

    assert slot.take(timeout=0.05) is None


def test_slot_keeps_only_newest():
    import numpy as np

    slot = LatestFrameSlot()
    image = np.zeros((4, 4, 3), np.uint8)
    for sequence in range(5):
        slot.put(Frame(image, image, sequence, 0.0))

    assert slot.take(timeout=0.1).sequence == 4
    assert slot.take(timeout=0.01) is None
    assert slot.dropped == 4


def test_downscale_keeps_aspect():
    import numpy as np

    image = np.zeros((720, 1280, 3), np.uint8)

    small = downscale(image, 640)

    assert small.shape == (360, 640, 3)
    assert downscale(small, 1000) is small
