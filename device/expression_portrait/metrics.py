"""Counters, latency histograms and health readings, for status and for Prometheus.

``Metrics`` collects what the daemon counts: frames, analyses, sessions,
errors by kind, and the latency of each pipeline stage (as a Prometheus
histogram and as a short window of recent values for the p50/p95 in status).
``write_textfile`` writes them in the Prometheus text format for
node-exporter's textfile collector (``--collector.textfile.directory``),
atomically: a temporary file in the same folder, fsync, then rename, so the
collector never reads half a file.

Hardware readings: the CPU temperature from /sys/class/thermal, and the
firmware's throttling flags from /sys/devices/platform/soc/soc:firmware/get_throttled
or ``vcgencmd get_throttled``. Bits 0 to 3 are under-voltage, ARM frequency
capped, throttled and soft temperature limit now; bits 16 to 19 are the same
"since boot". NOTE: on recent Raspberry Pi OS kernels the raspberrypi-hwmon
driver clears the "since boot" bits every 2 s, so they may under-report.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

TEXTFILE_NAME = "expression_portrait.prom"
THERMAL_PATH = Path("/sys/class/thermal/thermal_zone0/temp")
THROTTLED_PATH = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")

# Seconds; the stages run from under a millisecond (decoding) to a second (a slow Pi 4 under load).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
RECENT_SAMPLES = 200

THROTTLE_BITS = {
    "under_voltage": 0, "arm_frequency_capped": 1, "throttled": 2, "soft_temperature_limit": 3,
    "under_voltage_occurred": 16, "arm_frequency_capped_occurred": 17, "throttled_occurred": 18,
    "soft_temperature_limit_occurred": 19,
}


class MetricsSettings(BaseModel):
    """The [metrics] section."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    enabled: bool = Field(True, description="write the Prometheus textfile")
    directory: str = Field(
        "/var/lib/prometheus/node-exporter",
        description="node-exporter textfile collector folder (Debian's prometheus-node-exporter reads this one)")
    interval_s: float = Field(15.0, ge=1.0, le=3600.0, description="seconds between textfile updates")


class Histogram:
    """A Prometheus histogram plus the most recent samples for percentiles."""

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * len(self.buckets)
        self.total = 0
        self.sum = 0.0
        self.recent: deque[float] = deque(maxlen=RECENT_SAMPLES)

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        self.recent.append(value)
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1

    def percentile(self, fraction: float) -> float | None:
        """Return the ``fraction`` percentile (0..1) of the recent samples, nearest-rank."""
        if not self.recent:
            return None
        ordered = sorted(self.recent)
        rank = max(1, math.ceil(fraction * len(ordered)))
        return ordered[rank - 1]


class Metrics:
    """Thread-safe counters, gauges and histograms of one daemon run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.frames = 0
        self.analyses = 0
        self.sessions = 0
        self.errors: dict[str, int] = {}
        self.latency: dict[str, Histogram] = {}
        self._frame_times: deque[float] = deque(maxlen=64)

    def count_frame(self, timestamp: float | None = None) -> None:
        with self._lock:
            self.frames += 1
            self._frame_times.append(time.monotonic() if timestamp is None else timestamp)

    def count_analysis(self, timings_ms: dict[str, float] | None = None) -> None:
        with self._lock:
            self.analyses += 1
            for stage, milliseconds in (timings_ms or {}).items():
                self.latency.setdefault(stage, Histogram()).observe(milliseconds / 1000)

    def count_session(self) -> None:
        with self._lock:
            self.sessions += 1

    def count_error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def fps(self) -> float:
        """Frames per second over the last 64 frames, 0 if frames stopped for over 2 s."""
        with self._lock:
            times = list(self._frame_times)
        if len(times) < 2 or time.monotonic() - times[-1] > 2.0:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-6)

    def latency_summary(self) -> dict[str, dict[str, float | None]]:
        """Return {stage: {"p50_ms", "p95_ms", "count"}} from the recent samples."""
        with self._lock:
            summary = {}
            for stage, histogram in sorted(self.latency.items()):
                p50, p95 = histogram.percentile(0.5), histogram.percentile(0.95)
                summary[stage] = {
                    "p50_ms": None if p50 is None else round(p50 * 1000, 2),
                    "p95_ms": None if p95 is None else round(p95 * 1000, 2),
                    "count": histogram.total,
                }
            return summary

    def render(self, health: dict[str, float] | None = None) -> str:
        """Return all metrics in the Prometheus text exposition format."""
        lines: list[str] = []

        def family(name: str, kind: str, text: str) -> None:
            lines.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])

        with self._lock:
            family("expression_portrait_frames_total", "counter", "Camera frames received.")
            lines.append(f"expression_portrait_frames_total {self.frames}")
            family("expression_portrait_analyses_total", "counter", "Frames analysed by the face models.")
            lines.append(f"expression_portrait_analyses_total {self.analyses}")
            family("expression_portrait_sessions_total", "counter", "Visitor sessions started.")
            lines.append(f"expression_portrait_sessions_total {self.sessions}")
            family("expression_portrait_errors_total", "counter", "Errors caught, by kind.")
            for kind, count in sorted(self.errors.items()):
                lines.append(f'expression_portrait_errors_total{{kind="{_escape(kind)}"}} {count}')
            family("expression_portrait_stage_latency_seconds", "histogram", "Latency of each analysis stage.")
            for stage, histogram in sorted(self.latency.items()):
                label = f'stage="{_escape(stage)}"'
                for bound, count in zip(histogram.buckets, histogram.counts, strict=True):
                    lines.append(f'expression_portrait_stage_latency_seconds_bucket{{{label},le="{bound}"}} {count}')
                lines.append(f'expression_portrait_stage_latency_seconds_bucket{{{label},le="+Inf"}} {histogram.total}')
                lines.append(f"expression_portrait_stage_latency_seconds_sum{{{label}}} {histogram.sum:.6f}")
                lines.append(f"expression_portrait_stage_latency_seconds_count{{{label}}} {histogram.total}")
            family("expression_portrait_uptime_seconds", "gauge", "Seconds since the daemon started.")
            lines.append(f"expression_portrait_uptime_seconds {time.monotonic() - self.started:.1f}")
        family("expression_portrait_fps", "gauge", "Camera frames per second, recent.")
        lines.append(f"expression_portrait_fps {self.fps():.2f}")

        health = health or {}
        if "cpu_temperature_c" in health:
            family("expression_portrait_cpu_temperature_celsius", "gauge", "SoC temperature.")
            lines.append(f"expression_portrait_cpu_temperature_celsius {health['cpu_temperature_c']:.1f}")
        flags = {k: v for k, v in health.items() if k in THROTTLE_BITS}
        if flags:
            family("expression_portrait_throttle_flag", "gauge", "Firmware get_throttled flags (1 = set).")
            for flag, value in sorted(flags.items()):
                lines.append(f'expression_portrait_throttle_flag{{flag="{flag}"}} {int(value)}')
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_textfile(directory: str | os.PathLike[str], text: str, name: str = TEXTFILE_NAME) -> Path:
    """Write ``text`` to ``directory/name`` atomically and return the path.

    The file is made world-readable, because node-exporter runs as its own user.
    """
    folder = Path(directory)
    target = folder / name
    descriptor, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def read_cpu_temperature(path: Path = THERMAL_PATH) -> float | None:
    """Return the SoC temperature in degrees Celsius, or None where there is no sensor."""
    try:
        return int(path.read_text().strip()) / 1000
    except (OSError, ValueError):
        return None


def read_throttled(path: Path = THROTTLED_PATH, vcgencmd: str | None = "vcgencmd") -> int | None:
    """Return the firmware's get_throttled bit mask, or None on a machine that is not a Pi."""
    try:
        return int(path.read_text().strip(), 16)
    except (OSError, ValueError):
        pass
    command = shutil.which(vcgencmd) if vcgencmd else None
    if command is None:
        return None
    try:
        result = subprocess.run([command, "get_throttled"], capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.TimeoutExpired):
        return None
    # Prints "throttled=0x50005".
    _, _, value = result.stdout.strip().partition("=")
    try:
        return int(value, 16)
    except ValueError:
        return None


def throttle_flags(mask: int | None) -> dict[str, bool]:
    """Split a get_throttled mask into named flags; an empty dict when unknown."""
    if mask is None:
        return {}
    return {name: bool(mask >> bit & 1) for name, bit in THROTTLE_BITS.items()}


def read_health(thermal_path: Path = THERMAL_PATH, throttled_path: Path = THROTTLED_PATH,
                vcgencmd: str | None = "vcgencmd") -> dict[str, float]:
    """Return the CPU temperature and throttle flags that this machine exposes."""
    health: dict[str, float] = {}
    temperature = read_cpu_temperature(thermal_path)
    if temperature is not None:
        health["cpu_temperature_c"] = temperature
    health.update({k: float(v) for k, v in throttle_flags(read_throttled(throttled_path, vcgencmd)).items()})
    return health
