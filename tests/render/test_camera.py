"""Camera: fit contains every point, zoom keeps its anchor, transitions reach their target, y flip."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from immersions.render.camera import Camera


def to_ndc(camera: Camera, points: np.ndarray, **options) -> np.ndarray:
    """Project world points with the camera's matrix (pyrr row-vector convention)."""
    homogeneous = np.c_[points, np.zeros(len(points)), np.ones(len(points))].astype(np.float32)
    clip = homogeneous @ camera.matrix(**options)
    return clip[:, :2] / clip[:, 3:]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), aspect=st.floats(0.2, 5.0), scale=st.floats(1e-3, 1e4),
       margin=st.floats(0.0, 0.3))
def test_fit_contains_every_point(seed, aspect, scale, margin):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(50, 2)) * scale * rng.uniform(0.1, 10, size=2) + rng.normal(size=2) * scale
    camera = Camera.fitted(points, aspect, margin=margin)
    ndc = to_ndc(camera, points)
    assert np.all(np.abs(ndc) <= 1.0 / (1.0 + 2.0 * margin) + 1e-4)
    assert np.isclose(np.abs(ndc).max(), 1.0 / (1.0 + 2.0 * margin), atol=1e-4)  # tight on one axis
    xmin, ymin, xmax, ymax = camera.bounds()
    slack = 1e-9 * camera.height
    assert np.all((points >= [xmin - slack, ymin - slack]) & (points <= [xmax + slack, ymax + slack]))


def test_fit_includes_the_disc_radius_and_handles_a_single_point():
    camera = Camera.fitted(np.array([[3.0, 4.0]]), 1.0, margin=0.0, radius=0.5)
    np.testing.assert_allclose(camera.bounds(), (2.5, 3.5, 3.5, 4.5))
    camera = Camera.fitted(np.array([[3.0, 4.0]]), 2.0)
    assert camera.height > 0 and np.allclose(camera.center, (3.0, 4.0))


def test_zoom_keeps_the_anchor_fixed_and_pan_moves_the_view():
    camera = Camera(center=(1.0, -2.0), height=4.0, aspect=1.5)
    anchor = np.array([[2.0, -1.0]])
    before = to_ndc(camera, anchor)
    camera.zoom(3.0, around=anchor[0])
    np.testing.assert_allclose(to_ndc(camera, anchor), before, atol=1e-5)
    assert camera.height == pytest.approx(4.0 / 3.0)
    camera.pan(0.5, 0.25)
    np.testing.assert_allclose(to_ndc(camera, anchor + [0.5, 0.25]), before, atol=1e-5)
    with pytest.raises(ValueError, match="factor must be a positive"):
        camera.zoom(0.0)


def test_focus_moves_smoothly_to_the_target():
    camera = Camera(center=(0.0, 0.0), height=2.0)
    camera.focus((9.0, 9.0, 11.0, 11.0), duration=1.0, margin=0.0)
    assert camera.moving
    distances = []
    while camera.advance(0.1):
        distances.append(np.linalg.norm(camera.center - (10.0, 10.0)))
    assert not camera.moving and len(distances) == 9
    assert all(b < a for a, b in zip(distances, distances[1:]))
    np.testing.assert_allclose(camera.center, (10.0, 10.0))
    assert camera.height == pytest.approx(2.0)
    camera.focus((0.0, 0.0, 4.0, 4.0), duration=0.0, margin=0.0)
    assert not camera.moving and camera.height == pytest.approx(4.0)


def test_user_interaction_cancels_a_transition():
    camera = Camera()
    camera.focus((5.0, 5.0, 6.0, 6.0), duration=1.0)
    camera.advance(0.5)
    camera.pan(1.0, 0.0)
    assert not camera.moving and not camera.advance(0.1)


def test_flip_mirrors_the_vertical_axis_only():
    camera = Camera(center=(1.0, 1.0), height=3.0, aspect=2.0)
    points = np.array([[0.0, 0.0], [2.5, 1.7]])
    upright, flipped = to_ndc(camera, points), to_ndc(camera, points, flip_y=True)
    np.testing.assert_allclose(flipped[:, 0], upright[:, 0], atol=1e-6)
    np.testing.assert_allclose(flipped[:, 1], -upright[:, 1], atol=1e-6)


def test_pixel_to_world_inverts_the_projection():
    camera = Camera(center=(-3.0, 2.0), height=5.0, aspect=1.6)
    width, height = 160, 100
    world = camera.pixel_to_world(40, 25, width, height)
    ndc = to_ndc(camera, world[None])[0]
    np.testing.assert_allclose(ndc, (40 / width * 2 - 1, 1 - 25 / height * 2), atol=1e-5)


def test_matrix_is_float32_and_aspect_override_changes_only_x():
    camera = Camera(height=2.0, aspect=1.0)
    matrix = camera.matrix()
    assert matrix.shape == (4, 4) and matrix.dtype == np.float32
    wide = camera.matrix(aspect=2.0)
    assert wide[0, 0] == pytest.approx(matrix[0, 0] / 2) and wide[1, 1] == pytest.approx(matrix[1, 1])
    with pytest.raises(ValueError, match="aspect must be a positive"):
        Camera(aspect=-1.0)
