"""``immersions steer ADDRESS [VALUE ...]``: one change to a loop growing under ``immersions optimize --osc-port``."""
from __future__ import annotations

import argparse

from ..defaults import DEFAULT_OSC_HOST, DEFAULT_OSC_PORT

HELP = "send one OSC change to a loop growing under `immersions optimize --osc-port`"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``steer`` command."""
    from ..osc import OscControl

    parser = subparsers.add_parser(
        "steer", help=HELP,
        description="Sends one OSC message, e.g. `immersions steer /pitch_shift 4`, `immersions steer /objective "
                    "ar.blocks.8.relu:3 ar.blocks.8.relu:7` or `immersions steer /start noise`, so a shell or a "
                    "script can steer a performance without an OSC app. UDP does not confirm delivery: the "
                    "optimising command logs what it applied or why it ignored a message.")
    parser.add_argument("address", help=f"one of {', '.join(OscControl.addresses())}")
    parser.add_argument("values", nargs="*", help="whole numbers are sent as int, other numbers as float, "
                                                  "anything else as text")
    parser.add_argument("--host", default=DEFAULT_OSC_HOST, help="where the loop listens (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_OSC_PORT, help="its --osc-port (default: %(default)s)")
    parser.set_defaults(func=run)


def osc_value(text: str) -> int | float | str:
    """A command-line word as the OSC argument it stands for."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def run(args: argparse.Namespace) -> int:
    """Send the message."""
    from ..osc import OSC_HINT, OscControl

    if args.address not in OscControl.addresses():
        raise ValueError(f"unknown address {args.address!r}; the addresses are {', '.join(OscControl.addresses())}")
    try:
        from pythonosc.udp_client import SimpleUDPClient
    except ImportError as exc:
        raise RuntimeError(f"steering needs python-osc: {OSC_HINT} ({exc})") from exc
    values = [osc_value(text) for text in args.values]
    SimpleUDPClient(args.host, args.port).send_message(args.address, values)
    print(f"sent {args.address} {values} to {args.host}:{args.port}")
    return 0
