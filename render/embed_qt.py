"""Embedding the renderer in your own application, with a runnable PySide6 example.

**On a moderngl context you already have** (pygame, pyglet, a game engine, another widget toolkit): a
``Scene`` draws on whatever context and framebuffer it is given and owns only what it creates::

    ctx = moderngl.create_context()                   # wraps the context your toolkit made current
    scene = Scene(ctx, snapshots[0], layer_index, edges=edges)
    camera = Camera.fitted(snapshots.reshape(-1, 2), aspect=width / height)
    timeline = Timeline.for_activations(len(values), fps=60)
    # every frame, at t seconds:
    scene.update(positions=timeline.positions(snapshots, t), activations=timeline.activations(values, t))
    scene.draw(ctx.detect_framebuffer(), camera)     # the framebuffer your toolkit is drawing to
    # when done:
    scene.release()

If the process also trains or optimises with torch and Triton is installed, call
``immersions.render.llvm_order.load_triton_first()`` before your toolkit makes its first GL context (see
that module: a Mesa driver's LLVM loaded before Triton's crashes the process).

**In Qt** (``pip install -e '.[qt]'`` in a clone of immersions, which brings PySide6): :class:`LayoutWidget` below is a
``QOpenGLWidget``. Qt renders a widget into its own framebuffer object, not framebuffer 0, so ``paintGL``
draws into ``ctx.detect_framebuffer(self.defaultFramebufferObject())``. Run the example with::

    python -m immersions.render.embed_qt LAYOUT.npz [--activations ACTIVATIONS.npz]
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Sequence

import moderngl
import numpy as np

try:
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtGui import QKeyEvent, QMouseEvent, QSurfaceFormat, QWheelEvent
    from PySide6.QtOpenGLWidgets import QOpenGLWidget
    from PySide6.QtWidgets import QApplication, QWidget
except ImportError as exc:
    raise ImportError(f"the Qt example needs PySide6: pip install -e '.[qt]' in the immersions clone ({exc})") from exc

from .animation import Timeline, as_snapshots, default_timeline
from .camera import Camera
from .llvm_order import load_triton_first
from .scene import EDGE_LIMIT, Scene
from .window import Controls, WallClock

WHEEL_STEP = 120.0  # Qt's angleDelta units per wheel notch
_QT_KEYS = {Qt.Key.Key_Space: "space", Qt.Key.Key_Tab: "tab", Qt.Key.Key_Escape: "escape"}


def surface_format() -> QSurfaceFormat:
    """OpenGL 3.3 core, what the scene's shaders need; set it as default before the QApplication exists."""
    fmt = QSurfaceFormat()
    fmt.setVersion(3, 3)
    fmt.setProfile(QSurfaceFormat.OpenGLContextProfile.CoreProfile)
    return fmt


class LayoutWidget(QOpenGLWidget):
    """A Qt widget showing the animated layout: the same controls as the glfw viewer, timed by a QTimer.

    ``snapshots`` ``(S, N, 2)`` (or ``(N, 2)``), ``activations`` ``(T, N)``, ``layer_index`` ``(N,)``,
    ``edges`` ``(E, 2)``, at most ``max_edges`` drawn; GL objects are created in ``initializeGL`` and freed in
    ``release``.
    """

    def __init__(
        self,
        snapshots: np.ndarray,
        *,
        activations: np.ndarray | None = None,
        layer_index: np.ndarray | None = None,
        edges: np.ndarray | None = None,
        timeline: Timeline | None = None,
        fps: float = 60.0,
        colormap: str = "inferno",
        max_edges: int = EDGE_LIMIT,
        parent: QWidget | None = None,
    ) -> None:
        load_triton_first()  # before Qt makes this widget's GL context
        super().__init__(parent)
        self.snapshots = as_snapshots(snapshots)
        self.activations = activations
        self.layer_index = layer_index
        self.edges = edges
        self.colormap = colormap
        self.max_edges = max_edges
        self.timeline = timeline or default_timeline(activations, None, None, fps=fps)
        self.clock = WallClock()
        self.ctx: moderngl.Context | None = None
        self.scene: Scene | None = None
        self._positions = self.snapshots[0]
        self.camera = Camera.fitted(self.snapshots.reshape(-1, 2))
        self.controls = Controls(self.camera, None, self.clock, lambda: self._positions, layer_index,
                                 self.screenshot)
        self._drag_from: tuple[float, float] | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(max(int(1000 / fps), 1))

    def initializeGL(self) -> None:
        """Wrap Qt's current context and build the scene on it."""
        self.ctx = moderngl.create_context()
        self.scene = Scene(self.ctx, self._positions, self.layer_index, edges=self.edges, colormap=self.colormap,
                           max_edges=self.max_edges)
        if self.activations is None:
            self.scene.rest()
        self.controls.scene = self.scene

    def paintGL(self) -> None:
        """Draw the state at the clock's time into Qt's framebuffer object."""
        seconds = self.clock.time() % self.timeline.duration
        self._positions = self.timeline.positions(self.snapshots, seconds)
        values = None if self.activations is None else self.timeline.activations(self.activations, seconds)
        self.scene.update(positions=self._positions, activations=values)
        framebuffer = self.ctx.detect_framebuffer(self.defaultFramebufferObject())
        self.camera.aspect = framebuffer.width / framebuffer.height
        self.scene.draw(framebuffer, self.camera)

    def _tick(self) -> None:
        self.camera.advance(self._timer.interval() / 1000)
        self.update()

    def screenshot(self) -> Path:
        """Save the widget's current image as a PNG in the working folder."""
        path = Path(f"immersions-{int(self.clock.time() * 1000):08d}.png")
        self.grabFramebuffer().save(str(path))
        return path

    def keyPressEvent(self, event: QKeyEvent) -> None:
        name = _QT_KEYS.get(event.key(), event.text().lower())
        if name and not self.controls.key(name):
            self.window().close()

    def focusNextPrevChild(self, next: bool) -> bool:
        return False  # keep Tab for "next layer" instead of moving the keyboard focus

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag_from = (event.position().x(), event.position().y())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag_from = None

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag_from is not None:
            x, y = event.position().x(), event.position().y()
            self.controls.drag(x - self._drag_from[0], y - self._drag_from[1], max(self.height(), 1))
            self._drag_from = (x, y)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / WHEEL_STEP
        self.controls.scroll(steps, event.position().x(), event.position().y(), max(self.width(), 1),
                             max(self.height(), 1))

    def release(self) -> None:
        """Free the scene's GL objects (with Qt's context current) and stop the timer."""
        self._timer.stop()
        if self.scene is not None:
            self.makeCurrent()
            self.scene.release()
            self.doneCurrent()
            self.scene = None


def main(argv: Sequence[str] | None = None) -> int:
    """Open a window with the layout in ``argv``; returns Qt's exit status."""
    from .app import DEFAULT_MAX_EDGES
    from .commands.view import load_view_data

    parser = argparse.ArgumentParser(prog="python -m immersions.render.embed_qt", description=__doc__.split("\n")[0])
    parser.add_argument("layout", type=Path, help="layout .npz")
    parser.add_argument("--activations", type=Path, help="activations .npz recorded for the same network")
    parser.add_argument("--size", type=int, nargs=2, default=(1280, 720), metavar=("W", "H"))
    parser.add_argument("--max-edges", type=int, default=DEFAULT_MAX_EDGES, help="edges drawn, a seeded subset (default: %(default)s)")
    args = parser.parse_args(argv)
    data = load_view_data(args.layout, args.activations, None)
    QSurfaceFormat.setDefaultFormat(surface_format())
    app = QApplication.instance() or QApplication(sys.argv[:1])
    timeline = default_timeline(data.activations, None, None, activation_rate=data.activation_rate)
    widget = LayoutWidget(data.snapshots, activations=data.activations, layer_index=data.layer_index,
                          edges=data.edges, timeline=timeline, max_edges=args.max_edges)
    widget.setWindowTitle(f"immersions - {args.layout.name}")
    widget.resize(*args.size)
    app.aboutToQuit.connect(widget.release)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Qt's event loop never returns to Python for Ctrl-C
    widget.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
