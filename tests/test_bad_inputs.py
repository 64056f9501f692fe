"""Bad input from technicians, curators and clients: each gets a clear error, and the kiosk keeps running."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import contextlib  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import av  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from expression_portrait import control, media  # noqa: E402
from expression_portrait.cli import main  # noqa: E402
from expression_portrait.control import ControlServer  # noqa: E402
from expression_portrait.decode import load_image  # noqa: E402
from expression_portrait.errors import (  # noqa: E402
    CameraError,
    ContentError,
    ControlError,
    DecodeError,
    FrameError,
)
from expression_portrait.sources import ReplaySource  # noqa: E402
from expression_portrait.ui.content import CONTENT_DIR, load_languages  # noqa: E402
from expression_portrait.ui.flow import Observation, Press, State  # noqa: E402
from expression_portrait.ui.screens import check_fits  # noqa: E402
from expression_portrait.vision.aggregate import CaptureAggregator  # noqa: E402
from expression_portrait.vision.pipeline import Pipeline  # noqa: E402
from expression_portrait.vision.settings import VisionSettings  # noqa: E402

EXIT_CONFIG = 78


@pytest.fixture(scope="module")
def pipeline():
    return Pipeline.from_manifest()


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return load_image(media.path("single_face.jpg"))


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- files given to `expression-portrait analyze` ------------------------------------------

def write_audio_only(path: Path) -> None:
    """Write an AAC file in an MP4 container with no video stream."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        for index in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad files")
    jpeg = media.path("single_face.jpg").read_bytes()
    video = media.path("single_face.mp4").read_bytes()
    png = folder / "face.png"
    Image.open(media.path("single_face.jpg")).save(png)

    files = {"missing": folder / "missing.jpg", "directory": folder / "folder.jpg",
             "empty": folder / "empty.jpg", "truncated jpeg": folder / "truncated.jpg",
             "truncated png": folder / "truncated.png", "truncated mp4": folder / "truncated.mp4",
             "text named jpg": folder / "notes.jpg", "audio only": folder / "audio.mp4"}
    files["directory"].mkdir()
    files["empty"].write_bytes(b"")
    files["truncated jpeg"].write_bytes(jpeg[: len(jpeg) // 3])
    files["truncated png"].write_bytes(png.read_bytes()[: png.stat().st_size // 3])
    files["truncated mp4"].write_bytes(video[:2000])
    files["text named jpg"].write_text("not an image\n")
    write_audio_only(files["audio only"])
    return files


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("odd images")
    image = Image.open(media.path("single_face.jpg"))
    files = {"one pixel": folder / "one.png", "large": folder / "large.jpg", "gray": folder / "gray.png",
             "rgba": folder / "rgba.png", "cmyk": folder / "cmyk.jpg", "animated": folder / "animated.gif",
             "unicode": folder / "sitter é 顔 photo.jpg", "16-bit": folder / "gray16.png"}
    Image.new("RGB", (1, 1), (10, 20, 30)).save(files["one pixel"])
    image.resize((4000, 3000)).save(files["large"])
    image.convert("L").save(files["gray"])
    image.convert("RGBA").save(files["rgba"])
    image.convert("CMYK").save(files["cmyk"])
    image.save(files["animated"], save_all=True, append_images=[image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)],
               duration=100, loop=0)
    files["unicode"].write_bytes(media.path("single_face.jpg").read_bytes())
    gray16 = np.asarray(image.convert("L")).astype(np.uint16) * 257
    Image.fromarray(gray16).save(files["16-bit"])
    return files


def test_analyze_reports_each_bad_file(capsys, bad_files):
    good = media.path("single_face.jpg")
    paths = [str(path) for path in bad_files.values()]

    code, out, err = run_cli(capsys, "analyze", "--json", paths[0], str(good), *paths[1:])

    assert code == 1
    assert "Traceback" not in err
    document = json.loads(out)
    by_path = {file["path"]: file for file in document["files"]}
    assert len(by_path) == len(paths) + 1
    for name, path in bad_files.items():
        assert "error" in by_path[str(path)], name
        assert str(path) in by_path[str(path)]["error"], name
        assert f"error: {path}" in err, name
    assert len(by_path[str(good)]["frames"][0]["faces"]) == 1


def test_analyze_odd_images_find_the_face(capsys, odd_images):
    code, out, err = run_cli(capsys, "analyze", "--json", *map(str, odd_images.values()))

    assert code == 0, err
    by_path = {file["path"]: file for file in json.loads(out)["files"]}
    assert by_path[str(odd_images["one pixel"])]["frames"][0]["faces"] == []
    assert by_path[str(odd_images["large"])]["frames"][0]["size"] == [4000, 3000]
    for name in ("large", "gray", "rgba", "cmyk", "animated", "unicode", "16-bit"):
        faces = by_path[str(odd_images[name])]["frames"][0]["faces"]
        assert len(faces) == 1, name


def test_16_bit_png_decodes_like_8_bit(odd_images):
    eight = load_image(odd_images["gray"]).astype(np.int16)
    sixteen = load_image(odd_images["16-bit"]).astype(np.int16)

    assert sixteen.shape == eight.shape
    assert np.abs(sixteen - eight).max() <= 1


def test_float_tiff_decodes_unit_range(tmp_path, face):
    gray = face.mean(axis=2).astype(np.float32) / 255
    gray[0, 0] = np.nan
    path = tmp_path / "float.tif"
    Image.fromarray(gray).save(path)

    decoded = load_image(path)

    assert decoded[0, 0].tolist() == [0, 0, 0]
    assert abs(float(decoded[1:, 1:, 0].mean()) - float(gray[1:, 1:].mean() * 255)) < 1


def test_decompression_bomb_is_decode_error(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (20000, 10000)).save(path)

    with pytest.raises(DecodeError, match="too large") as caught:
        load_image(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("option", [["--threads", "0"], ["--max-frames", "0"]])
def test_analyze_rejects_bad_numbers(capsys, option):
    code, _, err = run_cli(capsys, "analyze", *option, str(media.path("single_face.mp4")))

    assert code != 0
    assert option[0] in err


# -- arrays given to the pipeline -------------------------------------------------------------

@pytest.mark.parametrize("name, frame, expected", [
    ("float64", lambda f: f.astype(np.float64), "dtype float64"),
    ("int16", lambda f: f.astype(np.int16), "dtype int16"),
    ("bool", lambda f: f > 128, "dtype bool"),
    ("nan", lambda f: np.full(f.shape, np.nan), "dtype float64"),
    ("empty", lambda f: np.zeros((0, 0, 3), np.uint8), "(0, 0, 3)"),
    ("two channels", lambda f: f[:, :, :2].copy(), "(562, 572, 2)"),
    ("batch", lambda f: f[None], "(1, 562, 572, 3)"),
    ("list", lambda f: f.tolist(), "type list"),
])
def test_pipeline_rejects_bad_arrays(pipeline, face, name, frame, expected):
    with pytest.raises(FrameError) as caught:
        pipeline.analyze(frame(face))
    assert expected in str(caught.value), name


def read_only(array: np.ndarray) -> np.ndarray:
    array = array.copy()
    array.setflags(write=False)
    return array


@pytest.mark.parametrize("name, frame", [
    ("rgba", lambda f: np.dstack([f, np.full(f.shape[:2], 255, np.uint8)])),
    ("gray", lambda f: f[:, :, 1].copy()),
    ("gray one channel", lambda f: f[:, :, 1:2].copy()),
    ("strided", lambda f: f[:, ::-1]),
    ("read-only", read_only),
    ("fortran order", np.asfortranarray),
])
def test_pipeline_accepts_other_layouts(pipeline, face, name, frame):
    pipeline.reset()
    result = pipeline.analyze(frame(face))

    assert len(result.faces) == 1, name
    assert result.faces[0].heads["emotion"].probabilities.sum() == pytest.approx(1, abs=1e-3)


def test_pipeline_one_pixel_frame(pipeline):
    result = pipeline.analyze(np.zeros((1, 1, 3), np.uint8))

    assert result.faces == []
    assert result.sitter is None


def test_pipeline_crowd_beyond_max_faces(face):
    small = np.asarray(Image.fromarray(face).resize((face.shape[1] // 2, face.shape[0] // 2)))
    crowd = np.ascontiguousarray(np.tile(small, (5, 5, 1)))
    settings = VisionSettings(detector="detector_full_range", max_faces=4)
    crowd_pipeline = Pipeline.from_manifest(settings=settings)

    result = crowd_pipeline.analyze(crowd)

    assert len(result.faces) >= 12
    assert sum(bool(face.heads) for face in result.faces) == 4
    aggregator = CaptureAggregator(3)
    aggregator.add(result, crowd)
    verdict = aggregator.verdict()
    assert verdict is None or set(verdict.heads) == {"emotion", "age", "gender"}


@pytest.mark.parametrize("edge", ["left", "top", "corner"])
def test_pipeline_face_cut_by_border(pipeline, face, edge):
    height, width = face.shape[:2]
    crop = {"left": face[:, width // 3:], "top": face[height // 3:, :],
            "corner": face[height // 3:, width // 3:]}[edge]
    pipeline.reset()

    result = pipeline.analyze(np.ascontiguousarray(crop))

    for found in result.faces:
        assert set(found.heads) == {"emotion", "age", "gender"}
        assert found.chips["emotion"].shape == (64, 64)


# -- the config file --------------------------------------------------------------------------

BAD_CONFIGS = {
    "typo": ("[camera]\nfsp = 30\n", ["fsp", "did you mean 'fps'"]),
    "wrong type": ('[camera]\nfps = "thirty"\n', ["fps", '"thirty"', "1.0 <= fps <= 60.0"]),
    "out of range": ("[vision]\nmax_faces = 0\n", ["max_faces = 0", "1 <= max_faces <= 256"]),
    "duplicate key": ("[camera]\nfps = 30\nfps = 20\n", ["not valid TOML", "line 3"]),
    "invalid toml": ("[camera\n", ["not valid TOML", "line 1"]),
    "binary": (b"\x7fELF\x02\x01\x01\x00\xd0\xff\xfe", ["not UTF-8", "save the config file as UTF-8"]),
}


@pytest.mark.parametrize("name", BAD_CONFIGS)
def test_config_check_names_problem(tmp_path, capsys, name):
    text, expected = BAD_CONFIGS[name]
    path = tmp_path / "config.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())

    code, _, err = run_cli(capsys, "config", "check", str(path))

    assert code == EXIT_CONFIG
    assert str(path) in err
    for part in expected:
        assert part in err, name


def test_config_check_missing_and_directory(tmp_path, capsys):
    code, _, err = run_cli(capsys, "config", "check", str(tmp_path / "absent.toml"))
    assert code == EXIT_CONFIG
    assert "absent.toml: config file not found" in err

    code, _, err = run_cli(capsys, "config", "check", str(tmp_path))
    assert code == EXIT_CONFIG
    assert f"{tmp_path}: is a folder, not a config file" in err


@contextlib.contextmanager
def _effective_nobody():
    """Act as user "nobody" when root, because root reads any file."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.mark.parametrize("locked", ["file", "folder"])
def test_config_check_unreadable(tmp_path_factory, capsys, locked):
    folder = tmp_path_factory.mktemp("locked")
    path = folder / "config.toml"
    path.write_text("[camera]\nfps = 30\n")
    # pytest's own temporary root is private to its user, so open every folder above.
    for parent in [folder, *folder.parents]:
        if parent == Path(parent.anchor) or parent == Path("/tmp"):
            break
        parent.chmod(0o755)
    if locked == "file":
        path.chmod(0o000)
    else:
        folder.chmod(0o700)

    try:
        with _effective_nobody():
            code, _, err = run_cli(capsys, "config", "check", str(path))
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)

    assert code == EXIT_CONFIG
    assert f"{path}: cannot read the config file: Permission denied" in err
    assert "run with sudo" in err


def test_config_with_byte_order_mark_is_valid(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_bytes("\ufeff[camera]\nfps = 20\n".encode())

    code, out, err = run_cli(capsys, "config", "check", str(path))

    assert code == 0, err
    assert "OK" in out


@pytest.mark.parametrize("name, text, expected", [
    ("unknown language", '[flow]\nlanguages = ["xx", "en"]\n', ['languages = ["xx", "en"]', "xx.toml", "not found"]),
    ("missing content folder", '[content]\ndirectory = "/nonexistent/content"\n',
     ['directory = "/nonexistent/content"', "not found"]),
    ("unknown detector", '[vision]\ndetector = "detector_huge"\n', ["detector_huge", "detector_short_range"]),
    ("unknown head", '[vision]\nheads = ["emotion", "mood"]\n', ["'mood'", "emotion, age, gender"]),
])
def test_config_check_loads_what_it_names(tmp_path, capsys, name, text, expected):
    path = tmp_path / "config.toml"
    path.write_text(text)

    code, _, err = run_cli(capsys, "config", "check", str(path))

    assert code == EXIT_CONFIG, name
    assert str(path) in err
    for part in expected:
        assert part in err, name


# -- curator-edited language files --------------------------------------------------------------

def content_folder(tmp_path: Path, edit) -> Path:
    folder = tmp_path / "content"
    folder.mkdir()
    for language in ("en", "fr"):
        text = (CONTENT_DIR / f"{language}.toml").read_text(encoding="utf-8")
        (folder / f"{language}.toml").write_text(edit(text) if language == "en" else text, encoding="utf-8")
    return folder


def load_and_draw(folder: Path) -> None:
    bundle = load_languages(["en", "fr"], folder)
    for content in bundle.values():
        check_fits(content)


@pytest.mark.parametrize("name, edit, expected", [
    ("missing key", lambda t: t.replace('prompt = "Show the machine:"\n', ""), "key strings.prompt is missing"),
    ("overlong", lambda t: t.replace('prompt = "Show the machine:"', 'prompt = "' + "Show me " * 300 + '"'),
     "key strings.prompt does not fit"),
    ("broken toml", lambda t: t.replace("[strings]", "[strings"), "not valid TOML"),
    ("unknown placeholder", lambda t: t.replace("{asked}", "{wanted}"), "unknown placeholder {wanted}"),
    ("format spec", lambda t: t.replace("{asked}", "{asked:d}"), "{asked:d}: placeholders take no format spec"),
    ("nested spec", lambda t: t.replace("({percent}%)", "({percent:>{page}}%)"), "{percent:>{page}}"),
    ("conversion", lambda t: t.replace("{asked}", "{asked!x}"), "{asked!x}"),
    ("nul character", lambda t: t.replace('prompt = "Show the machine:"', 'prompt = "Show\\u0000 me"'),
     "control character U+0000"),
])
def test_content_error_names_file_and_key(tmp_path, name, edit, expected):
    folder = content_folder(tmp_path, edit)

    with pytest.raises(ContentError) as caught:
        load_and_draw(folder)
    assert "en.toml" in str(caught.value), name
    assert expected in str(caught.value), name


def test_content_byte_order_mark_loads(tmp_path):
    folder = content_folder(tmp_path, lambda t: "\ufeff" + t)

    load_and_draw(folder)


def test_content_folder_in_place_of_file(tmp_path):
    folder = content_folder(tmp_path, lambda t: t)
    (folder / "en.toml").unlink()
    (folder / "en.toml").mkdir()

    with pytest.raises(ContentError, match="cannot read the content file"):
        load_languages(["en", "fr"], folder)


# -- the replay source ----------------------------------------------------------------------------

def test_replay_missing_path_names_it(tmp_path):
    with pytest.raises(DecodeError, match="replay source not found"):
        ReplaySource(tmp_path / "nothing.mp4")


def test_replay_audio_only_fails_at_start(bad_files):
    source = ReplaySource(bad_files["audio only"])

    with pytest.raises(DecodeError, match="audio.mp4"):
        source.start()


def test_replay_text_file_fails_on_read(bad_files):
    source = ReplaySource(bad_files["text named jpg"], realtime=False)
    source.start()
    try:
        with pytest.raises(CameraError, match="notes.jpg"):
            for _ in range(50):
                source.read(0.1)
    finally:
        source.stop()


# -- the control socket ------------------------------------------------------------------------

@pytest.fixture
def server(tmp_path):
    path = tmp_path / "control.sock"
    server = ControlServer(path, {"status": lambda request: {"state": "running"}})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def exchange(path: Path, data: bytes, timeout: float = 15) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        client.connect(str(path))
        client.sendall(data)
        client.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := client.recv(65536):
            reply += chunk
    return reply


@pytest.mark.parametrize("name, data, expected", [
    ("garbage", b"\x00\xff\xfe garbage\n", "not JSON"),
    ("empty", b"", "not JSON"),
    ("not an object", b"[1, 2]\n", '"command" string'),
    ("unknown command", b'{"command": "reboot"}\n', "unknown command 'reboot'; known: status"),
    ("huge", b'{"command": "status", "x": "' + b"a" * 100_000 + b'"}\n', "longer than 65536 bytes"),
    ("huge integer", b'{"command": "status", "x": ' + b"9" * 5000 + b"}\n", "not JSON"),
    ("deep nesting", b"[" * 60_000 + b"\n", "not JSON"),
    ("utf-16", '{"command": "status"}\n'.encode("utf-16"), "not JSON"),
])
def test_control_answers_bad_requests(server, name, data, expected):
    reply = json.loads(exchange(server.path, data))

    assert reply["ok"] is False, name
    assert expected in reply["error"], name
    assert json.loads(exchange(server.path, b'{"command": "status"}\n'))["result"] == {"state": "running"}


def test_control_survives_half_closed_clients(server):
    idle = []
    for _ in range(5):
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(server.path))
        client.sendall(b'{"command": "sta')
        idle.append(client)
    try:
        assert control.request("status", path=server.path, timeout=5) == {"state": "running"}
    finally:
        for client in idle:
            client.close()


def test_client_rejects_reply_that_is_not_object(tmp_path):
    path = tmp_path / "other.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def answer() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(1024)
            connection.sendall(b"[1, 2, 3]\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(ControlError, match="not a response object"):
            control.request("status", path=path, timeout=5)
    finally:
        thread.join(5)
        listener.close()


@pytest.mark.parametrize("command", ["status", "screenshot"])
def test_commands_without_daemon(tmp_path, capsys, command):
    code, _, err = run_cli(capsys, command, "--socket", str(tmp_path / "none.sock"))

    assert code != 0
    assert "the kiosk daemon is not running" in err
    assert str(tmp_path / "none.sock") in err


def test_screenshot_into_missing_folder(tmp_path, capsys):
    target = tmp_path / "absent" / "shot.png"

    code, _, err = run_cli(capsys, "screenshot", str(target), "--socket", str(tmp_path / "none.sock"))

    assert code != 0
    assert "Traceback" not in err
    assert f"folder {tmp_path / 'absent'} does not exist" in err


@pytest.mark.slow
def test_daemon_survives_garbage_on_socket(tmp_path):
    from daemon_process import DaemonProcess

    config = '[display]\nfps = 15\nwidth = 1280\nheight = 720\n[models]\nnum_threads = 1\n' \
             '[control]\nsocket = "@SOCKET@"\n[metrics]\nenabled = false\n'
    with DaemonProcess(tmp_path, config, replay=media.path("single_face.mp4")) as daemon:
        daemon.wait_message("READY=1", timeout=90)
        for data in (b"\x00\xff garbage\n", b"9" * 5000 + b"\n", b"[" * 60_000 + b"\n",
                     b'{"command": "shutdown"}\n', b'{"command": "status", "x": "' + b"a" * 100_000 + b'"}\n'):
            assert json.loads(exchange(daemon.socket_path, data))["ok"] is False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as half:
            half.connect(str(daemon.socket_path))
            half.sendall(b'{"command": "buttons"}\n')
            half.shutdown(socket.SHUT_WR)
            assert json.loads(half.makefile("rb").readline())["ok"] is True
        status = daemon.request("status")

        assert status["state"] == "running"
        assert "Traceback" not in daemon.stderr()


# -- buttons mashed through every state ------------------------------------------------------------

def test_flow_survives_random_presses():
    from test_flow import NOBODY, SITTER, make_flow, run

    seen = set()
    for seed in range(60):
        rng = random.Random(seed)
        flow, clock = make_flow()
        for _ in range(300):
            crowd = Observation(faces=3, sitter=True, sitter_id=rng.randint(1, 3), centred=rng.random() < 0.5,
                                position=(rng.random(), rng.random()))
            for _ in range(rng.randint(0, 4)):
                flow.press(rng.choice(list(Press)))
            if flow.capture_due:
                flow.finish_capture(rng.choice(["verdict", None]))
            run(flow, clock, rng.choice([0.05, 0.1, 1.0, 10.0]), rng.choice([SITTER, NOBODY, crowd, None]))
            seen.add(flow.state)
            if flow.state == State.EXPLANATIONS:
                assert 0 <= flow.page < flow.page_count

    assert seen >= {State.ATTRACT, State.PROMPT, State.COUNTDOWN, State.CAPTURE, State.VERDICT,
                    State.EXPLANATIONS}


@pytest.mark.slow
def test_kiosk_survives_button_mashing(tmp_path, pipeline):
    from gpiozero.pins.mock import MockFactory

    from expression_portrait.ui.buttons import GpioButtons
    from expression_portrait.ui.settings import ButtonSettings
    from test_kiosk import make_kiosk, run_for

    factory = MockFactory()
    kiosk, frames = make_kiosk(tmp_path, pipeline, steady_seconds=0.2, prompt_seconds=0.5,
                               countdown_seconds=1, capture_seconds=0.3, press_interval_seconds=0,
                               verdict_seconds=3, page_seconds=3)
    buttons = GpioButtons(ButtonSettings(bounce_seconds=0, restart_hold_seconds=0.5), kiosk.press,
                          pin_factory=factory)
    kiosk.attach_buttons(buttons)
    seen = set()
    stop = threading.Event()

    def mash() -> None:
        rng = random.Random(3)
        while not stop.is_set():
            pin = factory.pin(rng.choice([17, 27, 22]))
            pin.drive_low()
            time.sleep(rng.choice([0, 0.001, 0.01]))
            pin.drive_high()
            # Bursts of presses, then a pause long enough for the session to move on.
            time.sleep(rng.random() * 0.01 if rng.random() < 0.7 else 1.5)
            if rng.random() < 0.002:
                kiosk.out_of_order("technician test", "clear it again")
            if rng.random() < 0.02:
                kiosk.clear_out_of_order()

    masher = threading.Thread(target=mash, daemon=True)
    kiosk.source.start()
    masher.start()
    try:
        run_for(kiosk, 40, until=lambda k: seen.add(k.flow.state) or seen >= {State.VERDICT, State.EXPLANATIONS})
    finally:
        stop.set()
        masher.join(5)
        kiosk.source.stop()
        buttons.close()

    assert State.VERDICT in seen
    assert State.EXPLANATIONS in seen
    assert len(frames) > 20


# -- odd frames on the screen ------------------------------------------------------------------------

@pytest.mark.parametrize("frame_size", [(2, 1000), (1000, 2), (1, 1), (4000, 3000)])
@pytest.mark.parametrize("smooth", [True, False])
def test_cover_extreme_aspect_ratio(frame_size, smooth):
    import pygame

    from expression_portrait.ui import images

    frame = pygame.Surface(frame_size, depth=24)
    frame.fill((90, 120, 150))

    covered = images.cover(frame, (1280, 720), smooth=smooth)

    assert covered.get_size() == (1280, 720)
    centre = covered.get_at((640, 360))
    assert max(abs(centre[i] - expected) for i, expected in enumerate((90, 120, 150))) <= 3


def test_kiosk_replays_odd_images(tmp_path, pipeline):
    from expression_portrait.kiosk import Kiosk
    from expression_portrait.ui.display import HeadlessSink
    from expression_portrait.ui.settings import DisplaySettings, FlowSettings
    from test_kiosk import SIZE

    folder = tmp_path / "odd"
    folder.mkdir()
    face_image = Image.open(media.path("single_face.jpg"))
    Image.new("RGB", (1, 1)).save(folder / "a_one_pixel.png")
    Image.new("RGB", (2, 1000)).save(folder / "b_tall.png")
    Image.new("RGB", (1000, 2)).save(folder / "c_wide.png")
    face_image.convert("RGBA").save(folder / "d_rgba.png")
    face_image.convert("L").save(folder / "e_gray.png")
    settings = FlowSettings()
    source = ReplaySource(folder, realtime=True, image_fps=4)
    frames = []
    kiosk = Kiosk(source, pipeline, content=load_languages(settings.languages), flow_settings=settings,
                  display_settings=DisplaySettings(sink="headless", output_dir=tmp_path, width=SIZE[0],
                                                   height=SIZE[1]),
                  sink=HeadlessSink(tmp_path, SIZE), on_frame=frames.append, rng=random.Random(1))
    source.start()
    deadline = time.monotonic() + 3
    try:
        kiosk.run(until=lambda k: time.monotonic() > deadline)
    finally:
        source.stop()

    assert sum(frames) >= 5
    assert source.error is None
    assert kiosk.status().as_dict()["last_error"] == ""


# -- other technician commands -------------------------------------------------------------------------

@pytest.mark.parametrize("name, option, expected", [
    ("audio only", lambda files, tmp: ["--video", str(files["audio only"])], "contains no video stream"),
    ("text file", lambda files, tmp: ["--video", str(files["text named jpg"])], "not a readable image"),
    ("negative timeout", lambda files, tmp: ["--timeout", "-1"], "--timeout must be more than 0"),
    ("output is a file", lambda files, tmp: ["--output", str(files["empty"])], "is a file"),
])
def test_demo_rejects_bad_options(tmp_path, capsys, bad_files, name, option, expected):
    arguments = option(bad_files, tmp_path)
    if "--output" not in arguments:
        arguments += ["--output", str(tmp_path / "screens")]

    code, _, err = run_cli(capsys, "demo", *arguments)

    assert code != 0, name
    assert expected in err, name
    assert "Traceback" not in err, name


def test_demo_rejects_zero_size(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--size", "0x0"])

    assert exit_info.value.code == 2
    assert "size '0x0' is out of range: width must be 320 to 7680" in capsys.readouterr().err


def test_logs_rejects_negative_lines():
    import argparse

    from expression_portrait.commands import logs
    from expression_portrait.errors import ExpressionPortraitError

    parser = argparse.ArgumentParser()
    logs.add_arguments(parser)
    # journalctl_command, not the command itself, because run() replaces this process.
    with pytest.raises(ExpressionPortraitError, match="--lines must be 0 or more, got -5"):
        logs.journalctl_command(parser.parse_args(["--lines", "-5"]))


def test_replay_audio_only_names_missing_stream(bad_files):
    source = ReplaySource(bad_files["audio only"])

    with pytest.raises(DecodeError, match="contains no video stream"):
        source.start()
