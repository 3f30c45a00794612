"""The result of a force layout: positions of every neuron for ``S`` snapshots, and what it takes to go on.

``optimize`` returns a new layout that continues the simulation from this one's optimiser state (velocities
and adaptive step), as openTSNE's ``TSNEEmbedding.optimize`` does; ``inplace=True`` updates this one instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import torch

from .backends import Repulsion
from .forces import ForceParams
from .graph import Layer, NeuronGraph

Callback = Callable[[int, float, "Layout"], bool]


class OptimizationInterrupt(Exception):
    """Raised when a callback returns a truthy value; ``layout`` is the last state reached."""

    def __init__(self, layout: "Layout", iteration: int) -> None:
        super().__init__(f"layout optimisation stopped by a callback at iteration {iteration}")
        self.layout = layout
        self.iteration = iteration


@dataclass(eq=False)
class Layout:
    """Positions ``(S, N, D)`` float32 of the graph's vertices, with the parameters and optimiser state.

    ``charges`` are ``(S, N)``; ``velocity`` is ``(S, N, D)`` and ``step`` ``(S,)`` (the adaptive time
    step); ``pinned`` is a boolean ``(N,)`` mask of vertices that never move. ``iteration`` counts the
    finest-level iterations run so far. ``backend`` and ``device`` say where ``optimize`` runs; they are not
    saved with the layout.
    """

    positions: np.ndarray
    graph: NeuronGraph
    params: ForceParams
    seed: int
    charges: np.ndarray
    velocity: np.ndarray
    step: np.ndarray
    pinned: np.ndarray
    iteration: int = 0
    backend: str | Repulsion = field(default="auto", compare=False)
    device: str = field(default="cpu", compare=False)

    def __post_init__(self) -> None:
        if self.positions.ndim != 3:
            raise ValueError(f"positions must be (S, N, D), got shape {self.positions.shape}")
        s, n, d = self.positions.shape
        if n != self.graph.n_vertices:
            raise ValueError(f"positions hold {n} vertices but the graph has {self.graph.n_vertices}")
        expected = {"charges": (s, n), "velocity": (s, n, d), "step": (s,), "pinned": (n,)}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {getattr(self, name).shape}")
        if self.pinned.dtype != np.bool_:
            raise TypeError(f"pinned must be a boolean mask, got dtype {self.pinned.dtype}")

    @property
    def layers(self) -> tuple[Layer, ...]:
        """The graph's layer table."""
        return self.graph.layers

    @property
    def n_snapshots(self) -> int:
        """Number of snapshot layouts ``S``."""
        return int(self.positions.shape[0])

    @property
    def dims(self) -> int:
        """Dimension ``D`` of the positions (2 or 3)."""
        return int(self.positions.shape[2])

    def with_state(self, **changes) -> "Layout":
        """A copy with some fields replaced (arrays are copied, never shared with the original)."""
        return replace(self, **{name: np.array(value, copy=True) if isinstance(value, np.ndarray) else value
                                for name, value in changes.items()})

    def copy(self) -> "Layout":
        """A deep copy: positions and optimiser state are new arrays."""
        return self.with_state(positions=self.positions, charges=self.charges, velocity=self.velocity,
                               step=self.step, pinned=self.pinned)

    def optimize(self, n_iter: int, *, inplace: bool = False, callbacks: Callback | Sequence[Callback] | None = None,
                 callbacks_every: int = 10, backend: str | Repulsion | None = None,
                 device: str | torch.device | None = None, progress: bool | None = None) -> "Layout":
        """Run up to ``n_iter`` more Verlet iterations (fewer if it converges) and return the new layout.

        With ``inplace=True`` this layout takes the new positions and optimiser state and is returned.
        """
        from .verlet import continue_layout  # the integrator builds Layouts, so it is imported on use
        result = continue_layout(self, n_iter, callbacks=callbacks, callbacks_every=callbacks_every,
                                 backend=self.backend if backend is None else backend,
                                 device=self.device if device is None else str(device), progress=progress)
        if not inplace:
            return result
        self.positions, self.velocity, self.step = result.positions, result.velocity, result.step
        self.iteration = result.iteration
        return self
