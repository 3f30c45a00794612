"""OpenGL fixtures: one headless EGL context per session, checked for GL errors around every test, and a
display for the tests that open windows."""
import ctypes
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

from immersions.render.offscreen import create_context


@pytest.fixture(scope="session")
def gl_context():
    """The shared standalone context; tests skip when no EGL driver is installed."""
    try:
        context = create_context("egl")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield context
    context.release()


@pytest.fixture
def ctx(gl_context):
    """The shared context, with ``ctx.error`` required to be GL_NO_ERROR before and after the test."""
    assert gl_context.error == "GL_NO_ERROR"
    yield gl_context
    assert gl_context.error == "GL_NO_ERROR"


@pytest.fixture
def make_framebuffer(ctx):
    """Factory of RGBA8 framebuffers released after the test. The default framebuffer is bound before
    releasing them: moderngl rebinds its last bound framebuffer when creating another one, which fails
    once that one has been deleted."""
    created = []

    def make(width: int, height: int):
        framebuffer = ctx.simple_framebuffer((width, height))
        created.append(framebuffer)
        return framebuffer

    yield make
    ctx.detect_framebuffer(0).use()
    for framebuffer in created:
        framebuffer.release()


def _die_with_parent() -> None:
    """In a child before exec: the kernel sends it SIGTERM when the test process ends, however it ends (even
    aborted by a library), so no server outlives the run."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@pytest.fixture(scope="session")
def display():
    """The X11 or Wayland display windows open on: the session's own, else a private Xvfb server started for
    the session, so that headless CI (``apt-get install xvfb``) runs the window tests instead of skipping."""
    existing = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if existing or not sys.platform.startswith("linux"):
        yield existing
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("needs a display: neither DISPLAY nor WAYLAND_DISPLAY is set and Xvfb is not installed "
                    "(apt-get install xvfb)")
    # -displayfd: Xvfb takes the first free display number and writes it to the pipe once it accepts clients.
    # Its messages go to a file: a pipe nobody reads could fill up and stall the server.
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen([xvfb, "-displayfd", str(write_end), "-screen", "0", "1280x1024x24",
                                    "-nolisten", "tcp"], pass_fds=(write_end,), stdout=log, stderr=log,
                                   preexec_fn=_die_with_parent)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            number = pipe.readline().strip() if select.select([pipe], [], [], 30)[0] else ""
        try:
            if not number:
                log.seek(0)
                raise RuntimeError(f"Xvfb did not start: {log.read().decode(errors='replace').strip()}")
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("DISPLAY", f":{number}")
                yield f":{number}"
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def no_egl_context():
    """No EGL context current on this thread during the test, the previous one bound again after. libglvnd
    refuses to make a window's GLX context current where the headless context of an earlier test still is,
    with an X error that ends the process."""
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError:  # no EGL library, so no EGL context either
        yield
        return
    for function in (egl.eglGetCurrentDisplay, egl.eglGetCurrentContext, egl.eglGetCurrentSurface):
        function.restype = ctypes.c_void_p
    egl.eglMakeCurrent.argtypes = [ctypes.c_void_p] * 4
    context = egl.eglGetCurrentContext()
    if not context:
        yield
        return
    egl_draw, egl_read = 0x3059, 0x305A
    current = (egl.eglGetCurrentDisplay(), egl.eglGetCurrentSurface(egl_draw), egl.eglGetCurrentSurface(egl_read),
               context)
    egl.eglMakeCurrent(current[0], None, None, None)
    yield
    if not egl.eglMakeCurrent(*current):  # EGL_BAD_CONTEXT: released by its owner, current only until unbound
        assert egl.eglGetError() == 0x3006, "the test left a context current that keeps the EGL one from binding"
