"""``expression-portrait status``: what the running kiosk is doing, and whether it is healthy."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from expression_portrait import control
from expression_portrait.errors import ControlError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print the full status as JSON; without a reachable daemon, print "
                        '{"running": false or null, "healthy": false, "error": ...} and exit 1')
    parser.add_argument("--socket", metavar="PATH", default=None,
                        help=f"control socket (default: [control] socket, {control.DEFAULT_SOCKET})")


def run(args: argparse.Namespace) -> int:
    try:
        status = control.request("status", path=args.socket)
    except ControlError as exc:
        if args.json:
            print(json.dumps(_unreachable_status(exc), indent=2, sort_keys=True))
        raise  # the error and its fix also go to stderr, with exit status 1
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print(format_status(status))
    return 0 if status.get("healthy") else 1


def _unreachable_status(error: ControlError) -> dict[str, Any]:
    """Build the JSON status for a daemon that could not be asked.

    ``running`` is False when nothing listens on the socket, and None (unknown)
    when the daemon may run but the request failed, e.g. for lack of permission.
    """
    absent = isinstance(error.__cause__, (FileNotFoundError, ConnectionRefusedError))
    return {"running": False if absent else None, "healthy": False, "error": str(error)}


def _flag_text(flags: dict[str, bool]) -> str:
    if not flags:
        return "unknown (not a Raspberry Pi, or no firmware interface)"
    now = [name for name, value in flags.items() if value and not name.endswith("_occurred")]
    before = [name.removesuffix("_occurred") for name, value in flags.items() if value and name.endswith("_occurred")]
    text = ", ".join(now) if now else "none now"
    return text + (f"; since boot: {', '.join(before)}" if before else "")


def format_status(status: dict[str, Any]) -> str:
    """Render the status as the text a technician reads over SSH."""
    camera, display, health = status["camera"], status["display"], status["health"]
    kiosk = status.get("kiosk") or {}
    memory = status.get("memory") or {}
    lines = [
        f"healthy:      {'yes' if status['healthy'] else 'NO'}",
        f"state:        {status['state']}" + (f", screen {kiosk['state']}" if kiosk.get("state") else "")
        + (f" ({kiosk['out_of_order']})" if kiosk.get("out_of_order") else ""),
        f"uptime:       {_duration(status['uptime_s'])} (pid {status['pid']}, version {status['version']})",
        f"fps:          camera {status['fps']:.1f}"
        + (f", display {kiosk['display_fps']:.1f}, analysis {kiosk['analysis_fps']:.1f}" if kiosk else ""),
        f"camera:       {camera['state']} - {camera.get('source', '')}"
        + (f" {camera['model']}" if camera.get("model") else "")
        + (f"; {camera['message']}" if camera.get("message") else "")
        + (f"; next retry in {camera['next_retry_in_s']} s" if camera.get("next_retry_in_s") is not None else ""),
        f"display:      {display['state']} ({display['mode']})" + (f"; {display['error']}" if display.get("error") else ""),
        f"buttons:      GPIO {status['buttons'].get('gpio')}; keyboard {'on' if status['buttons'].get('keyboard') else 'off'}",
        f"runtime:      {status['runtime']}",
        f"counts:       {status['counts']['frames']} frames, {status['counts']['analyses']} analyses, "
        f"{status['counts']['sessions']} sessions",
    ]
    latency = status.get("latency_ms") or {}
    if latency:
        lines.append("latency (ms): " + "; ".join(f"{stage} p50 {v['p50_ms']} p95 {v['p95_ms']}"
                                                  for stage, v in latency.items()))
    for model in status.get("models", []):
        lines.append(f"model:        {model['name']:<22} {model['file']:<34} sha256 {model['sha256'][:16]}")
    temperature = health.get("cpu_temperature_c")
    lines.append(f"temperature:  {temperature:.1f} C" if temperature is not None else "temperature:  unknown")
    lines.append(f"throttling:   {_flag_text(health.get('throttling') or {})}")
    if memory.get("rss_mib") is not None:
        lines.append(f"memory:       {memory['rss_mib']} MiB used by the kiosk, {memory.get('available_mib')} MiB "
                     f"of {memory.get('total_mib')} MiB available")
    errors = status.get("last_errors") or []
    lines.append(f"last errors:  {'none' if not errors else ''}")
    for error in errors[-5:]:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(error["time"]))
        lines.append(f"  {stamp} {error['kind']}: {error['message']}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"
