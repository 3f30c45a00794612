"""OpenGL fixtures: one headless EGL context per session, checked for GL errors around every test."""
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
