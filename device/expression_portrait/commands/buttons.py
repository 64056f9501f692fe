"""``expression-portrait buttons``: print each GPIO button press of the running kiosk as it happens."""

from __future__ import annotations

import argparse
import time

from expression_portrait import control


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", metavar="PATH", default=None, help="control socket")
    parser.add_argument("--count", type=int, default=0, metavar="N", help="stop after N presses (default: run until Ctrl-C)")


def run(args: argparse.Namespace) -> int:
    seen = 0
    for event in control.stream_events("buttons", path=args.socket):
        if event.get("button") is None:
            print(f"GPIO buttons: {event['buttons']['gpio']}; watching presses, Ctrl-C to stop", flush=True)
            continue
        stamp = time.strftime("%H:%M:%S", time.localtime(event["time"]))
        print(f"{stamp}  {event['button'].upper()}", flush=True)
        seen += 1
        if args.count and seen >= args.count:
            break
    return 0
