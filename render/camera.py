"""A 2-D orthographic camera: centre, visible height and aspect, with smooth transitions.

``matrix()`` gives the pyrr projection (row-major as pyrr stores it, so its bytes upload directly to a
GLSL ``mat4``). ``flip_y=True`` mirrors the vertical axis: offscreen targets render upside down so that
``glReadPixels`` (bottom row first) returns the image top row first without flipping in numpy.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyrr


def _bounds_of(positions: np.ndarray) -> np.ndarray:
    points = np.asarray(positions, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
        raise ValueError(f"positions must have shape (N, 2) with N > 0, got {points.shape}")
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


class Camera:
    """Orthographic view of the plane: ``center`` (world), ``height`` (world units visible vertically)
    and ``aspect`` (width / height of the target). ``Scene.draw`` projects with its framebuffer's
    aspect, so fit with that aspect (and again after a resize) for ``fit`` to show every point."""

    def __init__(self, center: Sequence[float] = (0.0, 0.0), height: float = 2.0, aspect: float = 1.0):
        self.center = np.array(center, dtype=np.float64).reshape(2)
        self.height = self._checked_height(height)
        self.aspect = self._checked_aspect(aspect)
        self._transition: tuple[np.ndarray, float, np.ndarray, float, float, float] | None = None

    @staticmethod
    def _checked_height(height: float) -> float:
        if not np.isfinite(height) or height <= 0:
            raise ValueError(f"height must be a positive finite number, got {height}")
        return float(height)

    @staticmethod
    def _checked_aspect(aspect: float) -> float:
        if not np.isfinite(aspect) or aspect <= 0:
            raise ValueError(f"aspect must be a positive finite number, got {aspect}")
        return float(aspect)

    @classmethod
    def fitted(cls, positions: np.ndarray, aspect: float = 1.0, margin: float = 0.05,
               radius: float = 0.0) -> "Camera":
        """A camera that shows every position (and a disc of ``radius`` around it)."""
        camera = cls(aspect=aspect)
        camera.fit(positions, aspect, margin=margin, radius=radius)
        return camera

    def _view_for(self, bounds: Sequence[float], margin: float) -> tuple[np.ndarray, float]:
        if margin < 0:
            raise ValueError(f"margin must be non-negative, got {margin}")
        xmin, ymin, xmax, ymax = (float(b) for b in bounds)
        if xmax < xmin or ymax < ymin:
            raise ValueError(f"bounds must be (xmin, ymin, xmax, ymax) with min <= max, got {tuple(bounds)}")
        width, height = xmax - xmin, ymax - ymin
        needed = max(height, width / self.aspect)
        if needed <= 0:
            needed = 1.0
        return np.array([(xmin + xmax) / 2, (ymin + ymax) / 2]), needed * (1.0 + 2.0 * margin)

    def fit(self, positions: np.ndarray, aspect: float | None = None, margin: float = 0.05,
            radius: float = 0.0) -> None:
        """Jump to the view that contains every position, with ``margin`` (fraction) on each side."""
        if aspect is not None:
            self.aspect = self._checked_aspect(aspect)
        bounds = _bounds_of(positions) + np.array([-radius, -radius, radius, radius])
        self.center, self.height = self._view_for(bounds, margin)
        self._transition = None

    def bounds(self) -> tuple[float, float, float, float]:
        """The visible rectangle ``(xmin, ymin, xmax, ymax)`` in world units."""
        half = np.array([self.height * self.aspect, self.height]) / 2
        return (*(self.center - half), *(self.center + half))

    def pan(self, dx: float, dy: float) -> None:
        """Move the view by ``(dx, dy)`` world units; cancels a running transition."""
        self.center = self.center + np.array([dx, dy], dtype=np.float64)
        self._transition = None

    def zoom(self, factor: float, around: Sequence[float] | None = None) -> None:
        """Magnify by ``factor`` (> 1 zooms in), keeping the world point ``around`` fixed on screen."""
        if not np.isfinite(factor) or factor <= 0:
            raise ValueError(f"factor must be a positive finite number, got {factor}")
        if around is not None:
            anchor = np.asarray(around, dtype=np.float64).reshape(2)
            self.center = anchor + (self.center - anchor) / factor
        self.height = self.height / factor
        self._transition = None

    def focus(self, bounds: Sequence[float], duration: float = 0.5, margin: float = 0.05) -> None:
        """Move smoothly to show ``bounds`` = (xmin, ymin, xmax, ymax) over ``duration`` seconds
        (driven by ``advance``); a zero duration jumps at once."""
        if duration < 0:
            raise ValueError(f"duration must be non-negative, got {duration}")
        center, height = self._view_for(bounds, margin)
        if duration == 0:
            self.center, self.height, self._transition = center, height, None
            return
        self._transition = (self.center.copy(), self.height, center, height, float(duration), 0.0)

    @property
    def moving(self) -> bool:
        """Whether a transition started by ``focus`` is still running."""
        return self._transition is not None

    def advance(self, dt: float) -> bool:
        """Step a running transition by ``dt`` seconds (smoothstep easing, zoom interpolated in log
        scale); returns whether it is still running."""
        if self._transition is None:
            return False
        start_center, start_height, end_center, end_height, duration, elapsed = self._transition
        elapsed = min(elapsed + max(float(dt), 0.0), duration)
        if duration - elapsed <= 1e-9 * duration:  # steps summing to the duration finish it
            elapsed = duration
        t = elapsed / duration
        s = t * t * (3.0 - 2.0 * t)
        self.center = start_center + (end_center - start_center) * s
        self.height = float(np.exp(np.log(start_height) + (np.log(end_height) - np.log(start_height)) * s))
        self._transition = None if elapsed >= duration else (
            start_center, start_height, end_center, end_height, duration, elapsed)
        return self._transition is not None

    def pixel_to_world(self, x: float, y: float, width: int, height: int) -> np.ndarray:
        """World point under pixel ``(x, y)`` of a ``width`` x ``height`` target, origin at the top left."""
        xmin, ymin, xmax, ymax = self.bounds()
        return np.array([xmin + (x / width) * (xmax - xmin), ymax - (y / height) * (ymax - ymin)])

    def matrix(self, aspect: float | None = None, flip_y: bool = False) -> np.ndarray:
        """The (4, 4) float32 orthographic projection; ``aspect`` overrides the stored one."""
        aspect = self.aspect if aspect is None else self._checked_aspect(aspect)
        half_w, half_h = self.height * aspect / 2, self.height / 2
        (cx, cy) = self.center
        bottom, top = (cy + half_h, cy - half_h) if flip_y else (cy - half_h, cy + half_h)
        return pyrr.matrix44.create_orthogonal_projection(
            cx - half_w, cx + half_w, bottom, top, -1.0, 1.0, dtype=np.float32)
