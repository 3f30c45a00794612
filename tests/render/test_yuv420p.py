"""yuv420p frames converted on the GPU: BT.709 limited-range values against a numpy reference, padding of odd
sizes, and their encoding (bit-exact when lossless, tagged BT.709 so players show the drawn colours)."""
import re

import imageio_ffmpeg
import numpy as np
import pytest

from immersions.render.camera import Camera
from immersions.render.offscreen import Offscreen
from immersions.render.scene import Scene
from immersions.render.tiles import tiles_overlapping
from immersions.render.video import _run_ffmpeg, probe_video, write_video

CAMERA = Camera(center=(0.0, 0.0), height=2.0)
FPS = 30


def bt709_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """Reference conversion of an (H, W, 3) uint8 image: BT.709 in limited range, odd sizes padded with black
    at the right and bottom, chroma the mean of each 2x2 block; (3 * H' // 2, W') float."""
    height, width = rgb.shape[:2]
    padded = np.zeros((height + height % 2, width + width % 2, 3))
    padded[:height, :width] = rgb / 255.0
    r, g, b = np.moveaxis(padded, -1, 0)
    luma = 0.2126 * r + 0.7152 * g + 0.0722 * b  # E'y of BT.709
    blocks = lambda plane: plane.reshape(plane.shape[0] // 2, 2, plane.shape[1] // 2, 2).mean(axis=(1, 3))
    cb = blocks((b - luma) / 1.8556)
    cr = blocks((r - luma) / 1.5748)
    planes = [16 + 219 * luma, 128 + 224 * cb, 128 + 224 * cr]
    return np.concatenate([plane.ravel() for plane in planes]).reshape(-1, padded.shape[1])


def colourful_scene(ctx, seed: int = 0, n: int = 150) -> Scene:
    """Overlapping discs of many colours and brightnesses (some saturating, some dark) over the whole view,
    and edges, some reaching far outside it."""
    rng = np.random.default_rng(seed)
    positions = rng.uniform(-1.1, 1.1, size=(n, 2)).astype(np.float32)
    positions[:3] *= 20.0
    edges = rng.integers(0, n, size=(n // 2, 2))
    scene = Scene(ctx, positions, edges=edges, edge_alpha=0.5, point_size=0.05, colormap="viridis",
                  normalize="fixed")
    scene.update(activations=np.where(rng.random(n) < 0.3, 0.0, rng.random(n)).astype(np.float32))
    return scene


@pytest.mark.parametrize("width, height", [(64, 48), (63, 37), (30, 10)])
def test_yuv420p_frames_match_a_bt709_reference(width, height):
    try:
        offscreen = Offscreen(width, height)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    with offscreen, colourful_scene(offscreen.ctx) as scene:
        rgb = offscreen.render(scene, CAMERA)
        yuv = offscreen.render(scene, CAMERA, pixel_format="yuv420p")
        assert offscreen.ctx.error == "GL_NO_ERROR"
    expected = bt709_yuv420p(rgb)
    assert yuv.dtype == np.uint8 and yuv.shape == expected.shape
    assert yuv.shape == (3 * (height + height % 2) // 2, width + width % 2)
    assert np.abs(yuv - expected).max() <= 1.0
    assert rgb.std() > 20 and yuv.std() > 10, "the scene should hold many different colours"
    if height % 2:  # the padding row is black: luma 16
        assert (yuv[height] == 16).all()


def test_pipelined_yuv420p_frames_match_direct_renders():
    try:
        offscreen = Offscreen(64, 48)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    cameras = [Camera(height=h) for h in (2.0, 1.5, 2.5)]
    with offscreen, colourful_scene(offscreen.ctx, seed=1) as scene:
        expected = [offscreen.render(scene, camera, pixel_format="yuv420p").copy() for camera in cameras]
        frames = list(offscreen.frames(scene, cameras, pixel_format="yuv420p"))
        with pytest.raises(ValueError, match="pixel_format must be one of"):
            offscreen.render(scene, CAMERA, pixel_format="rgba")
    assert len(frames) == len(expected)
    for frame, reference in zip(frames, expected):
        np.testing.assert_array_equal(frame, reference)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_footprint_holds_every_lit_pixel(seed):
    """Pixels outside the footprint's tiles are background: converting only those tiles loses nothing."""
    try:
        offscreen = Offscreen(200, 120)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    rng = np.random.default_rng(seed)
    centres = np.array([[-0.9, 0.5], [0.6, -0.4]])
    positions = (centres[rng.integers(0, 2, 60)] + rng.normal(scale=0.12, size=(60, 2))).astype(np.float32)
    edges = np.concatenate([rng.integers(0, 30, size=(20, 2)), [[0, 59], [1, 2]]])
    tile = (16, 8)
    with offscreen, Scene(offscreen.ctx, positions, edges=edges, edge_alpha=0.5, point_size=0.04,
                          normalize="fixed", background=(0.1, 0.0, 0.2)) as scene:
        scene.update(activations=np.where(rng.random(60) < 0.3, 0.0, rng.random(60)).astype(np.float32))
        image = offscreen.render(scene, CAMERA)
        tiles = scene.footprint(tile)
    covered = np.zeros(image.shape[:2], bool)
    for column, row in tiles:  # framebuffer rows; drawn flipped, so they are the image's rows from the top
        covered[row * tile[1]:(row + 1) * tile[1], column * tile[0]:(column + 1) * tile[0]] = True
    background = np.round(np.array([0.1, 0.0, 0.2]) * 255)
    assert (image[~covered] == background).all()
    assert 0.05 < covered.mean() < 0.9, "the scene should leave some tiles dark and light others"
    assert (image[covered] != background).any(axis=-1).mean() > 0.05


def test_tiles_overlapping_matches_a_direct_count():
    rng = np.random.default_rng(4)
    low = rng.uniform(-50, 260, size=(40, 2))
    high = low + rng.uniform(0, 60, size=(40, 2))
    size, tile = (200, 120), (16, 8)
    got = {tuple(t) for t in tiles_overlapping(low, high, size, tile)}
    expected = set()
    for column in range(-(-size[0] // tile[0])):
        for row in range(-(-size[1] // tile[1])):
            box_low, box_high = np.array([column, row]) * tile, (np.array([column, row]) + 1) * tile
            if np.any(np.all((low < box_high) & (high >= box_low), axis=1)):
                expected.add((column, row))
    assert got == expected and expected


def decoded_yuv420p(path, width: int, height: int) -> np.ndarray:
    result = _run_ffmpeg(["-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"], binary=True)
    assert result.returncode == 0, result.stderr
    return np.frombuffer(result.stdout, np.uint8).reshape(-1, 3 * height // 2, width)


def stream_description(path) -> str:
    header = _run_ffmpeg(["-i", str(path)]).stderr
    return re.search(r"Video: .*", header).group(0)


@pytest.mark.parametrize("height", [48, 90])  # 90: even but not a multiple of 4 (a 160x90 render)
def test_yuv420p_frames_are_encoded_as_given_and_tagged_bt709(tmp_path, height):
    rng = np.random.default_rng(2)
    frames = [rng.integers(16, 236, size=(3 * height // 2, 64), dtype=np.uint8) for _ in range(4)]
    path = write_video(tmp_path / "clip.mp4", iter(frames), FPS, crf=0, pixel_format="yuv420p", progress=False)
    np.testing.assert_array_equal(decoded_yuv420p(path, 64, height), np.stack(frames))
    info = probe_video(path)
    assert (info["width"], info["height"], info["n_frames"]) == (64, height, 4)
    assert "yuv420p(tv, bt709, " in stream_description(path)  # matrix, primaries and transfer all BT.709


def test_rgb_frames_are_converted_with_bt709(tmp_path):
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [90, 40, 200]], np.uint8)
    frames = [np.broadcast_to(colour, (48, 64, 3)).copy() for colour in colours]
    path = write_video(tmp_path / "clip.mp4", frames, FPS, crf=0, progress=False)
    decoded = decoded_yuv420p(path, 64, 48)
    for frame, image in zip(decoded, frames):
        assert np.abs(frame - bt709_yuv420p(image)).max() <= 2.0
    assert "yuv420p(tv, bt709, " in stream_description(path)  # matrix, primaries and transfer all BT.709


@pytest.mark.parametrize("bad", [np.zeros((48, 64, 3), np.uint8), np.zeros((70, 64), np.uint8),
                                 np.zeros((72, 63), np.uint8), np.zeros((134, 64), np.uint8)])
def test_bad_yuv420p_frames_are_named(tmp_path, bad):
    with pytest.raises(ValueError, match=r"frame 0 must have shape \(3 \* H // 2, W\)"):
        write_video(tmp_path / "clip.mp4", [bad], FPS, pixel_format="yuv420p", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_encoder_arguments_are_checked(tmp_path):
    frames = [np.zeros((48, 64, 3), np.uint8)]
    with pytest.raises(ValueError, match="pixel_format must be one of"):
        write_video(tmp_path / "a.mp4", frames, FPS, pixel_format="nv12", progress=False)
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        write_video(tmp_path / "a.mp4", frames, FPS, threads=0, progress=False)
    path = write_video(tmp_path / "a.mp4", frames * 3, FPS, threads=1, progress=False)
    assert probe_video(path)["n_frames"] == 3


def test_an_encoder_that_dies_is_reported_and_leaves_no_file(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: shutil.which("false"))
    frames = (np.zeros((480, 640, 3), np.uint8) for _ in range(50))
    with pytest.raises(RuntimeError, match="ffmpeg"):
        write_video(tmp_path / "clip.mp4", frames, FPS, progress=False)
    assert list(tmp_path.iterdir()) == []
