"""Metrics: counting, percentiles, the Prometheus textfile and the hardware readings."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest

from expression_portrait import metrics
from expression_portrait.metrics import (
    Histogram,
    Metrics,
    read_health,
    throttle_flags,
    write_textfile,
)


def test_histogram_buckets_are_cumulative():
    histogram = Histogram(buckets=(0.01, 0.1, 1.0))
    for value in (0.005, 0.05, 0.05, 0.5, 5.0):
        histogram.observe(value)

    assert histogram.counts == [1, 3, 4]
    assert histogram.total == 5
    assert histogram.sum == pytest.approx(5.605)


def test_percentiles_nearest_rank():
    histogram = Histogram()
    for value in range(1, 101):
        histogram.observe(value / 1000)

    assert histogram.percentile(0.5) == pytest.approx(0.050)
    assert histogram.percentile(0.95) == pytest.approx(0.095)
    assert Histogram().percentile(0.5) is None


def test_latency_summary_in_milliseconds():
    recorded = Metrics()
    for milliseconds in (4.0, 5.0, 6.0, 40.0):
        recorded.count_analysis({"detect": milliseconds, "emotion": 1.0})

    summary = recorded.latency_summary()

    assert summary["detect"] == {"p50_ms": 5.0, "p95_ms": 40.0, "count": 4}
    assert summary["emotion"]["p50_ms"] == 1.0


def test_fps_from_frame_times():
    recorded = Metrics()
    now = time.monotonic()
    for index in range(31):
        recorded.count_frame(now - 2.0 + index / 15)

    assert recorded.fps() == pytest.approx(15.0, rel=0.01)


def test_fps_zero_when_frames_stop():
    recorded = Metrics()
    old = time.monotonic() - 10
    for index in range(10):
        recorded.count_frame(old + index / 15)

    assert recorded.fps() == 0.0


def test_render_prometheus_text():
    recorded = Metrics()
    recorded.count_frame()
    recorded.count_frame()
    recorded.count_analysis({"detect": 3.0})
    recorded.count_session()
    recorded.count_error("camera_missing")
    recorded.count_error("camera_missing")

    text = recorded.render({"cpu_temperature_c": 61.3, "under_voltage": 1.0, "throttled": 0.0})

    assert "expression_portrait_frames_total 2\n" in text
    assert "expression_portrait_analyses_total 1\n" in text
    assert "expression_portrait_sessions_total 1\n" in text
    assert 'expression_portrait_errors_total{kind="camera_missing"} 2\n' in text
    assert 'expression_portrait_stage_latency_seconds_bucket{stage="detect",le="0.0025"} 0\n' in text
    assert 'expression_portrait_stage_latency_seconds_bucket{stage="detect",le="0.005"} 1\n' in text
    assert 'expression_portrait_stage_latency_seconds_bucket{stage="detect",le="+Inf"} 1\n' in text
    assert 'expression_portrait_stage_latency_seconds_count{stage="detect"} 1\n' in text
    assert "expression_portrait_cpu_temperature_celsius 61.3\n" in text
    assert 'expression_portrait_throttle_flag{flag="under_voltage"} 1\n' in text
    assert "# TYPE expression_portrait_stage_latency_seconds histogram" in text
    assert text.endswith("\n")


def test_render_is_parseable_exposition():
    recorded = Metrics()
    recorded.count_analysis({"detect": 3.0})
    recorded.count_error('weird "kind"\nnext')

    for line in recorded.render().splitlines():
        if line.startswith("#"):
            assert line.split()[1] in ("HELP", "TYPE")
            continue
        name_and_labels, value = line.rsplit(" ", 1)
        float(value)
        assert "\n" not in name_and_labels


def test_textfile_written_atomically(tmp_path):
    path = write_textfile(tmp_path, "a 1\n")
    assert path.read_text() == "a 1\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644

    # A reader never sees a partial file while writers replace it.
    stop = threading.Event()
    seen = set()

    def read():
        while not stop.is_set():
            seen.add(path.read_text())

    reader = threading.Thread(target=read)
    reader.start()
    big = "x 1\n" * 20000
    for _ in range(30):
        write_textfile(tmp_path, big)
        write_textfile(tmp_path, "a 1\n")
    stop.set()
    reader.join()

    assert seen <= {big, "a 1\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["expression_portrait.prom"]


def test_textfile_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_textfile(tmp_path / "absent", "a 1\n")


def test_throttle_flags_decoded():
    flags = throttle_flags(0x50005)

    assert flags["under_voltage"] is True
    assert flags["throttled"] is True
    assert flags["arm_frequency_capped"] is False
    assert flags["under_voltage_occurred"] is True
    assert flags["throttled_occurred"] is True
    assert flags["soft_temperature_limit_occurred"] is False
    assert throttle_flags(None) == {}


def test_health_from_sysfs_files(tmp_path):
    thermal = tmp_path / "temp"
    thermal.write_text("58432\n")
    throttled = tmp_path / "get_throttled"
    throttled.write_text("50000\n")

    health = read_health(thermal, throttled, vcgencmd=None)

    assert health["cpu_temperature_c"] == pytest.approx(58.432)
    assert health["under_voltage"] == 0.0
    assert health["under_voltage_occurred"] == 1.0


def test_health_from_vcgencmd(tmp_path):
    tool = tmp_path / "vcgencmd"
    tool.write_text("#!/bin/sh\n[ \"$1\" = get_throttled ] && echo throttled=0x4\n")
    tool.chmod(0o755)

    mask = metrics.read_throttled(tmp_path / "absent", vcgencmd=str(tool))

    assert mask == 0x4


def test_health_on_a_machine_without_sensors(tmp_path):
    health = read_health(tmp_path / "no-temp", tmp_path / "no-throttle", vcgencmd=None)

    assert health == {}
