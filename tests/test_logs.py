"""Logging: journald or stderr, repeat limiting, face-data redaction and the system block."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest

from expression_portrait import logs
from expression_portrait.logs import FaceDataFilter, LoggingSettings, RepeatFilter, setup_logging


@pytest.fixture(autouse=True)
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class ListHandler(logging.Handler):
    """Collects records like systemd-python's JournalHandler would receive them."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


def test_stderr_outside_systemd():
    stream = io.StringIO()
    setup_logging(LoggingSettings(), stream=stream, environ={})

    logging.getLogger("expression_portrait.test").warning("camera %s is busy", "csi0")

    line = stream.getvalue()
    assert "WARNING expression_portrait.test: camera csi0 is busy" in line
    assert not line.startswith("<")


def test_stderr_under_systemd_has_priority_prefix(monkeypatch):
    # Without systemd-python, journald still reads stderr and its "<N>" priority prefixes.
    monkeypatch.setattr(logs, "_journal_handler", lambda: None)
    stream = io.StringIO()
    setup_logging(LoggingSettings(), stream=stream, environ={"JOURNAL_STREAM": "8:1234"})
    log = logging.getLogger("expression_portrait.test")

    log.error("first line\nsecond line", extra={"CAMERA_STATE": "missing"})
    log.info("ready")

    lines = stream.getvalue().splitlines()
    assert lines[0] == "<3>ERROR expression_portrait.test: first line"
    assert lines[1] == "<3>second line (camera_state=missing)"
    assert lines[2] == "<6>INFO expression_portrait.test: ready"


def test_journal_handler_gets_structured_fields():
    journal = ListHandler()
    handler = setup_logging(LoggingSettings(), environ={"INVOCATION_ID": "abc"}, journal_handler=journal)

    logging.getLogger("expression_portrait.test").warning("camera retry", extra={"CAMERA_STATE": "busy", "ATTEMPT": 3})

    assert handler is journal
    assert len(journal.records) == 1
    assert logs.journal_fields(journal.records[0]) == {"CAMERA_STATE": "busy", "ATTEMPT": 3}


def test_journal_never_forces_stderr():
    stream = io.StringIO()
    handler = setup_logging(LoggingSettings(journal="never"), stream=stream,
                            environ={"INVOCATION_ID": "abc"}, journal_handler=ListHandler())

    assert isinstance(handler, logging.StreamHandler)


def test_level_and_verbose():
    setup_logging(LoggingSettings(level="warning"), stream=io.StringIO(), environ={})
    assert logging.getLogger().level == logging.WARNING

    setup_logging(LoggingSettings(level="warning"), verbose=2, stream=io.StringIO(), environ={})
    assert logging.getLogger().level == logging.DEBUG


def make_record(message, *args, level=logging.ERROR, name="expression_portrait.camera"):
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_repeats_are_held_back_then_counted():
    clock = Clock()
    repeat = RepeatFilter(window=60, clock=clock)

    passed = [repeat.filter(make_record("camera busy (attempt %d)", n)) for n in range(5)]
    clock.now += 61
    later = make_record("camera busy (attempt %d)", 6)

    assert passed == [True, False, False, False, False]
    assert repeat.filter(later)
    assert later.getMessage() == "camera busy (attempt 6) [4 more like this in the last 60 s]"


def test_repeat_filter_keeps_info_and_other_messages():
    repeat = RepeatFilter(window=60, clock=Clock())

    assert repeat.filter(make_record("camera busy"))
    assert repeat.filter(make_record("display lost"))
    assert repeat.filter(make_record("frame", level=logging.INFO))
    assert repeat.filter(make_record("frame", level=logging.INFO))


def test_face_pixels_never_reach_the_log():
    stream = io.StringIO()
    setup_logging(LoggingSettings(), stream=stream, environ={})
    face = np.full((64, 64, 3), 173, np.uint8)

    logging.getLogger("expression_portrait.test").error("bad chip %s and %r", face, face.tobytes())

    text = stream.getvalue()
    assert "<uint8 array 64x64x3 withheld>" in text
    assert "<12288 bytes withheld>" in text
    assert "173" not in text


def test_small_values_pass_unchanged():
    record = make_record("box %s score %s", np.array([1, 2, 3, 4]), 0.9)

    FaceDataFilter().filter(record)

    assert record.getMessage() == "box [1 2 3 4] score 0.9"


def test_system_info_block():
    stream = io.StringIO()
    setup_logging(LoggingSettings(), stream=stream, environ={})

    logs.log_system_info(logging.getLogger("expression_portrait"), [("camera", "imx708")])

    text = stream.getvalue()
    assert text.count("INFO") == 1
    for label in ("expression-portrait", "board", "os", "python", "memory", "packages", "display driver", "camera"):
        assert f"  {label} " in text
    assert "numpy " in text


def test_systemd_python_journal_handler():
    journal = pytest.importorskip("systemd.journal", reason="systemd-python is not installed (apt install python3-systemd)")
    sent = []
    handler = journal.JournalHandler(SYSLOG_IDENTIFIER=logs.SYSLOG_IDENTIFIER,
                                     sender_function=lambda MESSAGE, **fields: sent.append((MESSAGE, fields)))
    setup_logging(LoggingSettings(journal="always"), environ={}, journal_handler=handler)

    logging.getLogger("expression_portrait.test").error("camera %s", "busy", extra={"CAMERA_STATE": "busy"})

    message, fields = sent[0]
    assert message == "camera busy"
    assert fields["PRIORITY"] == "3"
    assert fields["SYSLOG_IDENTIFIER"] == "expression-portrait"
    assert fields["CAMERA_STATE"] == "busy"
