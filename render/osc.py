"""OSC control of a growing loop: a performer's controller (TouchOSC, Max, Pure Data, a script) steers it.

The article made every parameter of the live procedure adjustable while it runs. ``OscControl`` listens for
OSC messages over UDP and applies them to a ``LoopControl``; each takes effect from the next clip:

    /objective SPEC [SPEC ...]   what to maximise, summed (``immersions optimize --objective`` syntax)
    /start silence|noise|origin  grow the next clip afresh (origin: the clip the loop began with)
    /steps N, /lr X, /seed N     the optimiser
    /time_shift X, /pitch_shift N, /masks N, /mask_frames N, /mask_bins N, /gradient_noise X,
    /denoise_every N, /denoise_strength X   the regularisers

It binds to 127.0.0.1 unless told otherwise, so only this machine can steer it. A bad message is logged
with what was wrong and changes nothing: a typo on stage never stops the loop.
"""
from __future__ import annotations

import logging
import threading
from functools import reduce
from operator import add
from typing import TYPE_CHECKING, Callable

from immersions.cpc.settings import SETTING_NAMES

from .defaults import DEFAULT_OSC_HOST, DEFAULT_OSC_PORT

if TYPE_CHECKING:  # torch: loaded by whoever has a loop to control, not by ``immersions steer``
    from immersions.cpc.loop_control import LoopControl
    from immersions.cpc.objectives import Objective

logger = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = DEFAULT_OSC_HOST, DEFAULT_OSC_PORT
"""The port ``immersions steer`` sends to unless told otherwise (``immersions optimize --osc-port 9000``)."""
OSC_HINT = "pip install -e '.[osc]' in the immersions clone (brings python-osc)"


class OscControl:
    """Serves ``control`` over OSC on ``host:port`` (port 0: any free port; see ``address``) from a daemon
    thread while the context is open. ``check`` vets a new objective (raising ValueError) before it is used."""

    def __init__(self, control: LoopControl, port: int, *, host: str = DEFAULT_HOST,
                 check: Callable[[Objective], None] = lambda objective: None) -> None:
        try:
            from pythonosc.dispatcher import Dispatcher
            from pythonosc.osc_server import BlockingOSCUDPServer
        except ImportError as exc:
            raise ImportError(f"OSC control needs python-osc: {OSC_HINT} ({exc})") from exc
        self._control, self._check = control, check
        dispatcher = Dispatcher()
        dispatcher.map("/objective", self._guarded(self._objective))
        dispatcher.map("/start", self._guarded(self._start))
        for name in SETTING_NAMES:
            dispatcher.map(f"/{name}", self._guarded(self._setting))
        dispatcher.set_default_handler(self._unknown)
        try:
            self._server = BlockingOSCUDPServer((host, port), dispatcher)
        except OSError as exc:
            raise OSError(f"cannot listen for OSC on {host}:{port}: {exc}") from exc
        self._thread = threading.Thread(target=self._server.serve_forever, name="immersions-osc", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) it listens on."""
        return self._server.server_address[:2]

    def __enter__(self) -> "OscControl":
        self._thread.start()
        logger.info("listening for OSC on %s:%d (%s)", *self.address, ", ".join(self.addresses()))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @staticmethod
    def addresses() -> list[str]:
        """Every OSC address it answers."""
        return ["/objective", "/start"] + [f"/{name}" for name in SETTING_NAMES]

    def _guarded(self, handler: Callable[..., None]) -> Callable[..., None]:
        """``handler`` with a bad message logged (address, values, why) instead of raised in the server."""
        def guarded(address: str, *values: object) -> None:
            try:
                handler(address, *values)
            except Exception as exc:  # noqa: BLE001 - whatever a message does wrong, the show goes on
                logger.warning("OSC %s %s ignored: %s", address, list(values), exc)
        return guarded

    def _objective(self, address: str, *specs: object) -> None:
        if not specs:
            raise ValueError("give one or more objective specs, e.g. ar.blocks.8.relu:3")
        from immersions.cpc.objectives import parse_objective

        objective = reduce(add, (parse_objective(str(spec)) for spec in specs))
        self._check(objective)
        self._control.set_objective(objective)

    def _start(self, address: str, *values: object) -> None:
        if len(values) != 1:
            raise ValueError("give one start: silence, noise or origin")
        self._control.restart(str(values[0]))

    def _setting(self, address: str, *values: object) -> None:
        if len(values) != 1 or isinstance(values[0], bool) or not isinstance(values[0], (int, float)):
            raise ValueError("give one number")
        self._control.update(**{address.lstrip("/"): values[0]})

    def _unknown(self, address: str, *values: object) -> None:
        logger.warning("OSC %s %s ignored: unknown address; the addresses are %s", address, list(values),
                       ", ".join(self.addresses()))
