"""Offscreen EGL rendering: orientation, pipelined frames equal direct renders, multisampling, errors."""
import numpy as np
import pytest

from immersions.render.camera import Camera
from immersions.render.offscreen import Offscreen, create_context
from immersions.render.scene import Scene

WIDTH, HEIGHT = 64, 48
CAMERA = Camera(center=(0.0, 0.0), height=1.0)


@pytest.fixture
def offscreen():
    try:
        target = Offscreen(WIDTH, HEIGHT)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    assert target.ctx.error == "GL_NO_ERROR"
    yield target
    if target.ctx is not None:
        assert target.ctx.error == "GL_NO_ERROR"
    target.release()


def corner_scene(ctx) -> Scene:
    """A bright neuron in the top-left quadrant and a dim one in the bottom-right."""
    positions = np.array([[-0.3, 0.25], [0.3, -0.25]], dtype=np.float32)
    scene = Scene(ctx, positions, point_size=0.05, normalize="fixed")
    scene.update(activations=np.array([1.0, 0.5], dtype=np.float32))
    return scene


def test_render_returns_rgb_top_row_first(offscreen):
    with corner_scene(offscreen.ctx) as scene:
        image = offscreen.render(scene, CAMERA)
    assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.uint8
    bright = image.sum(axis=-1).astype(float)
    top_left = bright[:HEIGHT // 2, :WIDTH // 2]
    rows, cols = np.indices(top_left.shape) + 0.5
    centre = (rows * top_left).sum() / top_left.sum(), (cols * top_left).sum() / top_left.sum()
    # World (-0.3, 0.25) at 48 px per unit: 14.4 px left of and 12 px above the centre (32, 24).
    np.testing.assert_allclose(centre, (12.0, 32 - 14.4), atol=0.25)
    assert bright[:HEIGHT // 2, :WIDTH // 2].sum() > bright[HEIGHT // 2:, WIDTH // 2:].sum() > 0


def test_pipelined_frames_match_direct_renders(offscreen):
    activations = [np.array([a, 1.0 - a], dtype=np.float32) for a in (0.0, 0.3, 0.7, 1.0)]
    cameras = [Camera(height=h) for h in (1.0, 1.2, 0.8, 1.0)]
    with corner_scene(offscreen.ctx) as scene:
        expected = []
        for values, camera in zip(activations, cameras):
            scene.update(activations=values)
            expected.append(offscreen.render(scene, camera))

        def updating_cameras():
            for values, camera in zip(activations, cameras):
                scene.update(activations=values)
                yield camera

        frames = list(offscreen.frames(scene, updating_cameras()))
    assert len(frames) == len(expected)
    for frame, reference in zip(frames, expected):
        np.testing.assert_array_equal(frame, reference)
    assert len({frame.tobytes() for frame in frames}) == len(frames)


def test_frames_of_no_cameras_yields_nothing(offscreen):
    with corner_scene(offscreen.ctx) as scene:
        assert list(offscreen.frames(scene, [])) == []


def test_multisampled_target_resolves_to_the_same_picture():
    try:
        plain, multisampled = Offscreen(WIDTH, HEIGHT), Offscreen(WIDTH, HEIGHT, samples=4)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    with plain, multisampled:
        images = []
        for target in (plain, multisampled):
            with corner_scene(target.ctx) as scene:
                images.append(target.render(scene, CAMERA).astype(int))
            assert target.ctx.error == "GL_NO_ERROR"
    assert np.abs(images[0] - images[1]).mean() < 2.0
    assert np.abs(images[0].sum() - images[1].sum()) < 0.05 * images[0].sum()


def test_scene_from_another_context_is_refused(offscreen, ctx):
    with corner_scene(ctx) as scene:
        with pytest.raises(ValueError, match="another context"):
            offscreen.render(scene, CAMERA)
    with pytest.raises(TypeError, match="scene must be a Scene"):
        offscreen.render("scene", CAMERA)


def test_missing_backend_raises_runtime_error_with_install_hint():
    with pytest.raises(RuntimeError, match="libegl1 libgl1-mesa-dri"):
        create_context("no-such-backend")


def test_invalid_sizes_are_rejected():
    with pytest.raises(ValueError, match="width and height must be positive"):
        Offscreen(0, 10)
    with pytest.raises(ValueError, match="samples must be non-negative"):
        Offscreen(10, 10, samples=-1)


def test_release_is_idempotent(offscreen):
    offscreen.release()
    offscreen.release()
    with pytest.raises(RuntimeError, match="released"):
        offscreen.render(None, CAMERA)
