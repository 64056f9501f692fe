"""The picamera2 adapter against the fake picamera2 fed with real video frames."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import fake_picamera2
from expression_portrait import decode, media
from expression_portrait.camera import CameraSettings, PicameraSource, yuv420_to_rgb
from expression_portrait.errors import CameraError
from fake_picamera2 import FakeCameraSystem

SMALL = {"width": 640, "height": 360, "analysis_width": 320, "analysis_height": 180}


@pytest.fixture(scope="module")
def video_frames() -> list[np.ndarray]:
    return list(decode.iter_video_frames(media.path("single_face.mp4"), max_frames=8))


@pytest.fixture
def system(video_frames, monkeypatch) -> FakeCameraSystem:
    world = FakeCameraSystem(video_frames)
    fake_picamera2.install(monkeypatch, world)
    return world


def resized(image: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def first_frame(source: PicameraSource):
    frame = source.read(timeout=3)
    assert frame is not None, "no frame within 3 s"
    return frame


@pytest.mark.parametrize("main_format", ["BGR888", "RGB888", "XBGR8888", "XRGB8888"])
def test_display_stream_is_rgb(system, video_frames, main_format):
    settings = CameraSettings(**SMALL, fps=30.0, main_format=main_format)

    with PicameraSource(settings) as source:
        frame = first_frame(source)

    expected = resized(video_frames[0], 640, 360)
    assert frame.display.shape == (360, 640, 3)
    assert mean_error(frame.display, expected) < 1.0
    # The same frame with red and blue swapped is far off, so the check can fail.
    assert mean_error(frame.display, expected[..., ::-1]) > 5.0


def test_yuv420_analysis_stream_is_rgb(system, video_frames):
    with PicameraSource(CameraSettings(**SMALL, fps=30.0)) as source:
        frame = first_frame(source)

    expected = resized(video_frames[0], 320, 180)
    assert frame.analysis.shape == (180, 320, 3)
    assert frame.analysis.dtype == np.uint8
    assert mean_error(frame.analysis, expected) < 4.0
    assert mean_error(frame.analysis, expected[..., ::-1]) > 5.0


def test_yuv420_stride_padding_is_cropped(video_frames):
    image = resized(video_frames[0], 200, 100)
    padded = fake_picamera2._encode_yuv420(image, stride=256)
    assert padded.shape == (150, 256)

    rgb = yuv420_to_rgb(padded, 200, 100)

    assert rgb.shape == (100, 200, 3)
    assert mean_error(rgb, image) < 4.0


def test_yuv420_rejects_wrong_shape():
    with pytest.raises(CameraError, match="expected"):
        yuv420_to_rgb(np.zeros((100, 64), np.uint8), 64, 64)


def test_rgb_analysis_stream_on_pi5(system, video_frames):
    system.platform = "PISP"
    settings = CameraSettings(**SMALL, fps=30.0, analysis_format="RGB888")

    with PicameraSource(settings) as source:
        frame = first_frame(source)

    assert mean_error(frame.analysis, resized(video_frames[0], 320, 180)) < 1.0


def test_rgb_analysis_stream_rejected_on_pi4(system):
    source = PicameraSource(CameraSettings(**SMALL, fps=30.0, analysis_format="RGB888"))

    with pytest.raises(CameraError, match="lores stream must be YUV") as caught:
        source.start()

    assert caught.value.kind == "failed"
    assert system.open_cameras == []


def test_configuration_sent_to_camera(system):
    settings = CameraSettings(**SMALL, fps=12.5, rotation=180, hflip=True, buffer_count=3)

    with PicameraSource(settings):
        camera = system.opened[0]
        config = camera.config

    assert config["main"]["size"] == (640, 360)
    assert config["main"]["format"] == "BGR888"
    assert config["lores"]["size"] == (320, 180)
    assert config["lores"]["format"] == "YUV420"
    assert config["buffer_count"] == 3
    assert camera.controls["FrameDurationLimits"] == (80000, 80000)
    # 180 degrees is both flips; a mirror on top of it undoes the horizontal one.
    assert (config["transform"].hflip, config["transform"].vflip) == (0, 1)


def test_rotation_180_flips_image(system, video_frames):
    with PicameraSource(CameraSettings(**SMALL, fps=30.0, rotation=180)) as source:
        frame = first_frame(source)

    expected = resized(video_frames[0][::-1, ::-1], 640, 360)
    assert mean_error(frame.display, expected) < 1.5


def test_rotation_90_turns_image(system, video_frames):
    with PicameraSource(CameraSettings(**SMALL, fps=30.0, rotation=90)) as source:
        frame = first_frame(source)

    assert frame.display.shape == (640, 360, 3)
    assert frame.analysis.shape == (320, 180, 3)
    expected = np.rot90(resized(video_frames[0], 640, 360), k=-1)
    assert mean_error(frame.display, expected) < 1.0


def test_no_camera_is_missing(system):
    system.cameras = []

    with pytest.raises(CameraError, match="no camera at index 0") as caught:
        PicameraSource(CameraSettings(**SMALL, fps=30.0)).start()

    assert caught.value.kind == "missing"


def test_index_error_maps_to_missing(system):
    # The camera vanishes between global_camera_info() and Picamera2().
    original = system.cameras
    calls = []

    def vanishing():
        calls.append(1)
        return [dict(c) for c in original] if len(calls) == 1 else []

    picamera2 = sys.modules["picamera2"]
    picamera2.Picamera2.global_camera_info = classmethod(lambda cls: vanishing())

    with pytest.raises(CameraError, match="disappeared") as caught:
        PicameraSource(CameraSettings(**SMALL, fps=30.0)).start()

    assert caught.value.kind == "missing"


def test_camera_held_elsewhere_is_busy(system):
    system.busy = True

    with pytest.raises(CameraError, match="busy") as caught:
        PicameraSource(CameraSettings(**SMALL, fps=30.0)).start()

    assert caught.value.kind == "busy"
    assert "Device or resource busy" in str(caught.value)


def test_second_source_on_same_camera_is_busy(system):
    with PicameraSource(CameraSettings(**SMALL, fps=30.0)):
        with pytest.raises(CameraError) as caught:
            PicameraSource(CameraSettings(**SMALL, fps=30.0)).start()

    assert caught.value.kind == "busy"


def test_stop_closes_camera(system):
    source = PicameraSource(CameraSettings(**SMALL, fps=30.0))
    source.start()
    first_frame(source)

    source.stop()

    assert system.open_cameras == []
    # Closed means another source can acquire it again.
    with PicameraSource(CameraSettings(**SMALL, fps=30.0)) as again:
        assert first_frame(again) is not None


def test_stall_returns_none_and_stop_is_quick(system):
    source = PicameraSource(CameraSettings(**SMALL, fps=30.0))
    source.start()
    first_frame(source)
    system.stalled.set()
    time.sleep(0.1)
    source.read(timeout=0.1)  # a frame captured before the stall may still be waiting

    assert source.read(timeout=0.3) is None
    assert source.last_frame_age >= 0.3

    started = time.monotonic()
    source.stop()
    assert time.monotonic() - started < 3.5
    assert system.open_cameras == []


def test_capture_error_raises_on_read(system):
    source = PicameraSource(CameraSettings(**SMALL, fps=30.0))
    source.start()
    first_frame(source)

    system.fail_capture = "Camera frontend has timed out!"
    with pytest.raises(CameraError, match="frontend has timed out") as caught:
        for _ in range(20):
            source.read(timeout=0.2)
    source.stop()

    assert caught.value.kind == "failed"


def test_slow_reader_gets_newest_frame(system):
    with PicameraSource(CameraSettings(**SMALL, fps=30.0)) as source:
        first = first_frame(source)
        time.sleep(0.6)  # about eighteen frames at 30 fps
        second = first_frame(source)

    assert second.sequence - first.sequence >= 3
    assert source.dropped >= 2
    assert not second.display.flags.writeable


def test_requests_are_released(system):
    with PicameraSource(CameraSettings(**SMALL, fps=30.0, buffer_count=2)) as source:
        for _ in range(5):
            first_frame(source)
        camera = system.opened[0]

    assert camera._held == 0
    assert camera.captured >= 5


def test_picamera2_not_imported_until_start():
    code = ("import sys, expression_portrait.camera as c; "
            "assert 'picamera2' not in sys.modules and 'libcamera' not in sys.modules; "
            "s = c.PicameraSource()\n"
            "try:\n    s.start()\nexcept c.CameraError as e:\n    print(e.kind, e)")

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("missing")
    assert "python3-picamera2" in result.stdout


def test_settings_reject_lores_larger_than_main():
    with pytest.raises(ValueError, match="larger than the display"):
        CameraSettings(width=640, height=360, analysis_width=1280, analysis_height=720)


def test_settings_reject_other_aspect_ratio():
    with pytest.raises(ValueError, match="aspect ratio"):
        CameraSettings(width=1280, height=720, analysis_width=640, analysis_height=480)


def test_yuv420_with_odd_chroma_rows(video_frames):
    # 90 rows give 45 chroma rows, so each chroma plane ends in the middle of an array row.
    image = resized(video_frames[0], 160, 90)
    packed = fake_picamera2._encode_yuv420(image, stride=192)

    rgb = yuv420_to_rgb(packed, 160, 90)

    assert packed.shape == (135, 192)
    assert mean_error(rgb, image) < 4.0
