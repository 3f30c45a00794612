"""The force layout's parameters: a plain frozen dataclass without torch, so that a ``Layout`` file and the
command line's help read them without loading it. ``forces`` and ``simulate`` use them."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace

from .backends import DEFAULT_SOFTENING


@dataclass(frozen=True)
class ForceParams:
    """Force constants and the integration schedule; immutable so a ``Layout`` can carry its own copy.

    ``k`` and ``centering`` hold on the finest level. On coarser levels (``at_level``) the centering is
    divided by ``centering_growth`` per level (the seed grows it as the layout refines) and the exponent
    moves toward ``coarse_k`` on the coarsest level (quadratically in the level's depth): a longer-ranged
    repulsion while the global shape forms unfolds it reliably, the final ``k`` then sets the spacing. A level ``L`` steps above the
    finest runs at most ``min(max_iter, fine_iter * iter_growth ** L)`` iterations: coarse levels are
    cheap and settle the global shape, fine levels only untangle locally. A level stops early, after at
    least ``min_iter`` iterations, once the mean displacement per iteration falls below ``tolerance`` mean
    edge lengths, checked every ``check_every`` iterations (the only host synchronisation). With
    ``untangle_iter`` above 0 a level whose cap is reached goes on, up to ``untangle_iter`` more iterations,
    while its squared force still falls by ``untangle_fall`` per check: a folded layout is not cut off while it
    unfolds. ``None`` (the default) lets ``ForceLayout`` choose by coarsening: the seed's fixed schedule (0) for
    the axis merge, where it was measured, and ``UNTANGLE_ITER`` more for the structural one.

    The Verlet step starts at ``time_step`` and adapts between ``time_step / 100`` and ``max_time_step``:
    it grows by ``step_growth`` while the squared force falls and shrinks by ``step_shrink`` when it rises.
    No vertex moves more than ``max_displacement`` mean edge lengths per iteration, and ``damping`` is the
    fraction of velocity kept per iteration. The cap is well below one edge length because the repulsion
    ``d^-k`` is near-singular at short range: for ``k`` above 2 a vertex that may jump a whole edge length
    lands beside another one and folds the grid (``k = 3`` with a cap of 1 collapses), while at ``k = 2``
    the long-range repulsion dominates and the smaller cap costs neither quality nor time.
    """

    k: float = 2.0
    coarse_k: float = 1.5
    centering: float = 0.01
    centering_growth: float = 1.0
    attraction: float = 1.0
    repulsion: float = 1.0
    theta: float = 1.2
    time_step: float = 0.5
    max_time_step: float = 3.5
    damping: float = 0.6
    max_displacement: float = 0.3
    step_growth: float = 1.2
    step_shrink: float = 0.7
    max_iter: int = 100
    fine_iter: int = 5
    iter_growth: float = 1.8
    min_iter: int = 10
    tolerance: float = 2e-3
    check_every: int = 10
    untangle_iter: int | None = None
    untangle_fall: float = 0.01
    softening: float = DEFAULT_SOFTENING

    def __post_init__(self) -> None:
        positive = ("k", "coarse_k", "attraction", "time_step", "max_time_step", "max_displacement", "step_growth",
                    "tolerance")
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"ForceParams.{name} must be a finite number > 0, got {value!r}")
        for name in ("centering", "repulsion", "theta", "softening"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"ForceParams.{name} must be a finite number >= 0, got {value!r}")
        if not 0 <= self.damping < 1:
            raise ValueError(f"ForceParams.damping must lie in [0, 1), got {self.damping!r}")
        if not 0 < self.step_shrink < 1:
            raise ValueError(f"ForceParams.step_shrink must lie in (0, 1), got {self.step_shrink!r}")
        if self.centering_growth <= 0:
            raise ValueError(f"ForceParams.centering_growth must be > 0, got {self.centering_growth!r}")
        if self.iter_growth < 1:
            raise ValueError(f"ForceParams.iter_growth must be >= 1, got {self.iter_growth!r}")
        if not 0 <= self.untangle_fall < 1:
            raise ValueError(f"ForceParams.untangle_fall must lie in [0, 1), got {self.untangle_fall!r}")
        if self.untangle_iter is not None and (not isinstance(self.untangle_iter, int) or self.untangle_iter < 0):
            raise ValueError(f"ForceParams.untangle_iter must be None or a non-negative integer, "
                             f"got {self.untangle_iter!r}")
        for name in ("max_iter", "fine_iter", "min_iter", "check_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (1 if name == "check_every" else 0):
                raise ValueError(f"ForceParams.{name} must be a non-negative integer (check_every >= 1), "
                                 f"got {value!r}")

    def at_level(self, level: int, n_levels: int) -> "ForceParams":
        """The parameters of the level ``level`` steps coarser than the finest of ``n_levels`` levels."""
        if not 0 <= level < n_levels:
            raise ValueError(f"level must lie in [0, {n_levels - 1}], got {level}")
        share = (level / (n_levels - 1)) ** 2 if n_levels > 1 else 0.0
        return replace(self, k=self.k + (self.coarse_k - self.k) * share,
                       centering=self.centering / self.centering_growth ** level)

    def iterations_at(self, level: int) -> int:
        """Iteration cap of the level ``level`` steps coarser than the finest one."""
        return int(min(self.max_iter, round(self.fine_iter * self.iter_growth ** level)))

    def to_json(self) -> str:
        """The parameters as a JSON object (what ``Layout`` files store)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ForceParams":
        """Parameters from ``to_json`` output; unknown keys are an error naming them."""
        values = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ForceParams fields {unknown}; known fields are {sorted(known)}")
        return cls(**values)
