"""The Qt example: construction without a GL context, and drawing into a window on a display (Xvfb in CI)."""
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("PySide6", reason="the Qt example needs the [qt] extra")

# Qt aborts the whole process (not an exception) when its platform plugin cannot load, e.g. xcb without
# libxcb-cursor0; this child process finds out first.
_PROBE = "from PySide6.QtWidgets import QApplication; QApplication([])"


def qt_platform_problem(env: dict[str, str]) -> str | None:
    """Why a QApplication cannot start in ``env`` (Qt's own lines about it), or None when it can."""
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "a QApplication did not start within 60 s"
    if probe.returncode == 0:
        return None
    lines = [line for line in (probe.stderr + probe.stdout).splitlines() if line.strip()]
    reasons = [line.removeprefix("qt.qpa.plugin: ") for line in lines if line.startswith("qt.qpa")] or lines[:1]
    return f"Qt's {env.get('QT_QPA_PLATFORM', 'default')} platform cannot start (exit {probe.returncode}): " \
           f"{' '.join(reasons) or 'no message'}"


@pytest.fixture(scope="module")
def qt_app(request):
    """One QApplication for the module, on the display when there is one (the platform is fixed once the
    application exists), else on the offscreen platform, which still serves the tests needing no GL."""
    try:
        request.getfixturevalue("display")
    except pytest.skip.Exception:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    problem = qt_platform_problem(dict(os.environ))
    if problem:
        pytest.skip(problem)
    from PySide6.QtGui import QSurfaceFormat
    from PySide6.QtWidgets import QApplication

    from immersions.render.embed_qt import surface_format

    QSurfaceFormat.setDefaultFormat(surface_format())
    return QApplication.instance() or QApplication([])


def layout_data():
    rng = np.random.default_rng(0)
    snapshots = rng.normal(size=(3, 40, 2)).astype(np.float32)
    activations = rng.random((12, 40)).astype(np.float32)
    layer_index = np.repeat(np.arange(4), 10)
    edges = np.stack([np.arange(0, 30), np.arange(10, 40)], axis=1)
    return snapshots, activations, layer_index, edges


def test_widget_constructs_and_handles_keys_without_gl(qt_app):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QKeyEvent

    from immersions.render.embed_qt import LayoutWidget

    snapshots, activations, layer_index, edges = layout_data()
    widget = LayoutWidget(snapshots, activations=activations, layer_index=layer_index, edges=edges)
    assert widget.timeline.duration == pytest.approx(12 * 4096 / 44100, abs=1 / 60)
    assert widget.scene is None, "GL objects wait for initializeGL"
    widget.keyPressEvent(QKeyEvent(QKeyEvent.Type.KeyPress, Qt.Key.Key_Space, Qt.KeyboardModifier.NoModifier, " "))
    assert widget.clock.paused
    widget.keyPressEvent(QKeyEvent(QKeyEvent.Type.KeyPress, Qt.Key.Key_2, Qt.KeyboardModifier.NoModifier, "2"))
    assert widget.controls.focused == 1 and widget.camera.moving
    widget.release()


def test_widget_draws_into_qt_framebuffer(display, no_egl_context, qt_app):
    """QOpenGLWidget needs a display: the offscreen platform has no GL."""
    from immersions.render.embed_qt import LayoutWidget

    snapshots, activations, layer_index, edges = layout_data()
    activations[:] = 1.0
    widget = LayoutWidget(snapshots, activations=activations, layer_index=layer_index, edges=edges,
                          max_edges=len(edges) - 1)
    widget.resize(96, 64)
    image = widget.grabFramebuffer()
    assert (image.width(), image.height()) == (96, 64)
    assert widget.scene is not None and widget.ctx.error == "GL_NO_ERROR"
    assert widget.scene.n_edges_drawn == len(edges) - 1
    pixels = np.array([[image.pixelColor(x, y).value() for x in range(0, 96, 2)] for y in range(0, 64, 2)])
    assert pixels.max() > 100, "lit neurons should show in Qt's framebuffer object"
    assert pixels.min() < 20, "the background between neurons should stay dark"
    widget.release()


def test_probe_names_the_platform_that_cannot_start():
    """A platform Qt cannot load aborts the child, not this run, and the reason names the platform."""
    problem = qt_platform_problem({**os.environ, "QT_QPA_PLATFORM": "no-such-platform"})
    assert problem is not None and "no-such-platform" in problem
    assert qt_platform_problem({**os.environ, "QT_QPA_PLATFORM": "offscreen"}) is None


def test_widget_without_activations_shows_the_network_dimly_lit(display, no_egl_context, qt_app):
    from immersions.render.embed_qt import LayoutWidget

    cells = np.stack(np.meshgrid(np.arange(12), np.arange(8)), axis=-1).reshape(-1, 2).astype(np.float32)
    widget = LayoutWidget(cells, layer_index=np.repeat(np.arange(4), 24))
    widget.resize(96, 64)
    image = widget.grabFramebuffer()
    pixels = np.array([[image.pixelColor(x, y).value() for x in range(96)] for y in range(64)])
    assert pixels.mean() > 5 and pixels.max() < 200  # the network shows, dimly (HSV value); it was black
    widget.release()
