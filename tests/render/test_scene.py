"""Scene on Mesa EGL: lit pixels, colours, normalisation, edges, streaming updates, render paths, shaders."""
import logging

import numpy as np
import pytest

from immersions.render.camera import Camera
from immersions.render.colormaps import COLORMAPS, colormap, layer_palette
from immersions.render.scene import Scene
from immersions.render.tiles import TILE_PX, occupied_tiles
from immersions.render.shaders import ShaderError, load_program, shader_source

SIZE = 64
CAMERA = Camera(center=(0.0, 0.0), height=1.0)  # 64 px per world unit on a 64x64 target


def lit(image: np.ndarray) -> np.ndarray:
    """Mask of pixels brighter than the black background."""
    return image[..., :3].max(axis=-1) > 0


def centroid(image: np.ndarray) -> tuple[float, float]:
    """Mean (row, column) of lit pixel centres, in pixel units from the top-left corner."""
    rows, cols = np.nonzero(lit(image))
    return rows.mean() + 0.5, cols.mean() + 0.5


def one_neuron(ctx, activation: float, position=(0.25, 0.25), **options) -> np.ndarray:
    options = {"point_size": 0.1, "normalize": "fixed", **options}
    with Scene(ctx, np.array([position], dtype=np.float32), **options) as scene:
        scene.update(activations=np.array([activation], dtype=np.float32))
        return scene.snapshot(SIZE, SIZE, CAMERA)


@pytest.mark.parametrize("mode", ["instanced", "indexmap"])
def test_active_neuron_lights_a_disc_at_its_position(ctx, mode):
    image = one_neuron(ctx, 1.0, mode=mode)
    # World (0.25, 0.25) is 16 px right of and 16 px above the centre; rows run top to bottom.
    np.testing.assert_allclose(centroid(image), (16, 48), atol=0.25)
    rows, cols = np.nonzero(lit(image))
    radius_px = 0.1 * SIZE
    distance = np.hypot(cols + 0.5 - 48, rows + 0.5 - 16)
    assert distance.max() <= radius_px + 1.0
    brightness = image[..., :3].astype(float).sum(axis=-1)
    covered_area = brightness.sum() / brightness[16, 48]  # anti-aliased rim pixels count partially
    assert abs(covered_area - np.pi * radius_px**2) < 0.05 * np.pi * radius_px**2
    assert image[16, 48, :3].max() > 200


@pytest.mark.parametrize("mode", ["instanced", "indexmap"])
def test_silent_neuron_stays_background(ctx, mode):
    image = one_neuron(ctx, 0.0, mode=mode)
    assert not lit(image).any()
    assert (image[..., 3] == 255).all()


@pytest.mark.parametrize("mode", ["instanced", "indexmap"])
def test_barely_active_neuron_is_still_drawn(ctx, mode):
    """Silent neurons are skipped by the rasteriser; any activation above the bottom of the range is drawn."""
    white = np.ones((1, 3), np.float32)
    image = one_neuron(ctx, 0.05, mode=mode, layer_colors=white, value_range=(0.0, 1.0))
    assert abs(int(image[16, 48, 0]) - round(0.05 * 255)) <= 1
    assert lit(image).sum() > 0.9 * np.pi * (0.5 * 0.1 * SIZE) ** 2  # at least the disc of min_size 0.5


def test_colormap_tables_have_the_published_endpoints():
    assert set(COLORMAPS) == {"inferno", "magma", "viridis", "gray"}
    np.testing.assert_allclose(colormap("inferno")[[0, -1]], [[0.001, 0.0, 0.014], [0.988, 0.998, 0.645]], atol=1e-3)
    np.testing.assert_allclose(colormap("viridis")[[0, -1]], [[0.267, 0.005, 0.329], [0.993, 0.906, 0.144]], atol=1e-3)
    np.testing.assert_allclose(colormap("gray", 5)[:, 0], [0, 0.25, 0.5, 0.75, 1.0])
    table = colormap("magma")
    assert table.shape == (256, 3) and table.dtype == np.float32
    assert np.all(np.diff(table.sum(axis=1)) > -1e-3)  # brightness never drops along the map
    with pytest.raises(ValueError, match="colormap must be one of"):
        colormap("jet")


@pytest.mark.parametrize("name", ["inferno", "viridis", "gray"])
def test_full_activation_renders_the_top_colormap_entry(ctx, name):
    image = one_neuron(ctx, 1.0, colormap=name)
    expected = np.round(colormap(name)[-1] * 255)
    np.testing.assert_allclose(image[16, 48, :3], expected, atol=2)


def test_half_activation_is_dimmed_by_its_value(ctx):
    image = one_neuron(ctx, 0.5, colormap="gray")
    # colour(0.5) * 0.5 = 0.25 of full white.
    assert abs(int(image[16, 48, 0]) - 64) <= 2


def test_layer_colors_replace_the_colormap(ctx):
    palette = layer_palette(3)
    positions = np.array([[-0.25, 0.0], [0.0, 0.0], [0.25, 0.0]], dtype=np.float32)
    with Scene(ctx, positions, np.arange(3), layer_colors=palette, point_size=0.05, normalize="fixed") as scene:
        scene.update(activations=np.ones(3, dtype=np.float32))
        image = scene.snapshot(SIZE, SIZE, CAMERA)
    for layer, col in enumerate((16, 32, 48)):
        np.testing.assert_allclose(image[32, col, :3], np.round(palette[layer] * 255), atol=2)


def test_layer_normalisation_makes_deep_layers_visible(ctx):
    positions = np.array([[-0.25, 0.0], [0.25, 0.0]], dtype=np.float32)
    activations = np.array([1.0, 0.001], dtype=np.float32)  # the second layer is 1000x weaker
    images = {}
    for normalize in ("layer", "global"):
        with Scene(ctx, positions, np.array([0, 1]), point_size=0.05, normalize=normalize) as scene:
            scene.update(activations=activations)
            images[normalize] = scene.snapshot(SIZE, SIZE, CAMERA)
            if normalize == "layer":
                np.testing.assert_allclose(scene.layer_range, [[0.0, 1.0], [0.0, 0.001]], rtol=1e-6)
    assert images["layer"][32, 48, :3].max() > 200
    assert images["global"][32, 48, :3].max() < 5
    assert images["layer"][32, 16, :3].max() > 200 and images["global"][32, 16, :3].max() > 200


def test_indexmap_recolours_after_a_range_reset_drawn_on_the_instanced_path(ctx):
    with grid_scene(ctx, "indexmap") as scene:
        scene.update(activations=np.full(scene.n_neurons, 4.0, dtype=np.float32))
        scene.update(activations=np.full(scene.n_neurons, 1.0, dtype=np.float32))
        dim = scene.snapshot(96, 96, CAMERA)  # 1 within the running range [0, 4]
        scene.reset_range()  # range [0, 0]: everything maps to 0
        scene.mode = "instanced"
        reset_instanced = scene.snapshot(96, 96, CAMERA)
        scene.mode = "indexmap"
        reset_indexmap = scene.snapshot(96, 96, CAMERA)
    assert lit(dim).any()
    assert not lit(reset_instanced).any() and not lit(reset_indexmap).any()


def test_running_range_widens_and_resets(ctx):
    positions = np.zeros((4, 2), dtype=np.float32)
    layers = np.array([1, 0, 1, 0])  # not sorted by layer
    with Scene(ctx, positions, layers) as scene:
        scene.update(activations=np.array([2.0, 0.5, -1.0, 0.25], dtype=np.float32))
        scene.update(activations=np.array([1.0, 3.0, 0.0, 0.0], dtype=np.float32))
        np.testing.assert_allclose(scene.layer_range, [[0.0, 3.0], [-1.0, 2.0]])
        scene.reset_range()
        np.testing.assert_allclose(scene.layer_range, np.zeros((2, 2)))


def two_connected_neurons(ctx, **options) -> Scene:
    positions = np.array([[-0.3, 0.0], [0.3, 0.0]], dtype=np.float32)
    return Scene(ctx, positions, edges=np.array([[0, 1]]), point_size=0.03, edge_alpha=0.5, **options)


def test_edges_toggle_changes_pixels_between_neurons(ctx):
    with two_connected_neurons(ctx) as scene:
        scene.update(activations=np.array([1.0, 1.0], dtype=np.float32))
        assert scene.show_edges and scene.n_edges_drawn == 1
        with_edges = scene.snapshot(SIZE, SIZE, CAMERA)
        scene.show_edges = False
        without_edges = scene.snapshot(SIZE, SIZE, CAMERA)
    between = (slice(28, 37), slice(28, 37))
    assert lit(with_edges[between]).any()
    assert not lit(without_edges[between]).any()
    # The neurons themselves are unchanged by the toggle.
    np.testing.assert_array_equal(without_edges[:, :8], with_edges[:, :8])


def test_edge_subset_is_seeded_and_bounded(ctx):
    rng = np.random.default_rng(1)
    positions = rng.normal(size=(50, 2)).astype(np.float32)
    edges = rng.integers(0, 50, size=(400, 2))
    images = []
    for seed in (3, 3, 4):
        with Scene(ctx, positions, edges=edges, max_edges=60, seed=seed, edge_alpha=1.0) as scene:
            assert scene.n_edges_drawn == 60
            images.append(scene.snapshot(SIZE, SIZE))
    np.testing.assert_array_equal(images[0], images[1])
    assert (images[0] != images[2]).any()


@pytest.mark.parametrize("mode", ["instanced", "indexmap"])
def test_update_streams_new_positions_into_the_same_buffers(ctx, mode):
    with Scene(ctx, np.array([[0.25, 0.25]], dtype=np.float32), point_size=0.05, normalize="fixed",
               mode=mode) as scene:
        scene.update(activations=np.ones(1, dtype=np.float32))
        buffers = (scene._position_buffer.glo, scene._activation_buffer.glo)
        before = scene.snapshot(SIZE, SIZE, CAMERA)
        scene.update(positions=np.array([[-0.25, -0.25]], dtype=np.float32))
        after = scene.snapshot(SIZE, SIZE, CAMERA)
        assert (scene._position_buffer.glo, scene._activation_buffer.glo) == buffers
    np.testing.assert_allclose(centroid(before), (16, 48), atol=0.25)
    np.testing.assert_allclose(centroid(after), (48, 16), atol=0.25)


def grid_scene(ctx, mode: str, **options) -> Scene:
    side = 12
    xs, ys = np.meshgrid(np.linspace(-0.4, 0.4, side), np.linspace(-0.4, 0.4, side))
    positions = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    layers = np.repeat(np.arange(3), side * side // 3)
    scene = Scene(ctx, positions, layers, point_size=0.025, mode=mode, **options)
    scene.update(activations=np.random.default_rng(0).random(side * side).astype(np.float32))
    return scene


def test_instanced_and_indexmap_modes_agree(ctx):
    images = {}
    for mode in ("instanced", "indexmap"):
        with grid_scene(ctx, mode) as scene:
            images[mode] = scene.snapshot(96, 96, CAMERA).astype(int)
            assert scene.last_mode == mode
    difference = np.abs(images["instanced"] - images["indexmap"])[..., :3].max(axis=-1)
    assert lit(images["instanced"]).sum() > 500
    assert (difference > 8).mean() < 0.01
    assert np.abs(images["instanced"].mean() - images["indexmap"].mean()) < 0.5


def test_indexmap_follows_activation_updates_without_rebuilding(ctx):
    with grid_scene(ctx, "indexmap") as scene:
        scene.snapshot(96, 96, CAMERA)
        key = scene._index_map.key
        scene.update(activations=np.zeros(scene.n_neurons, dtype=np.float32))
        dark = scene.snapshot(96, 96, CAMERA)
        assert scene._index_map.key == key
    assert not lit(dark).any()


@pytest.mark.parametrize("mode", ["instanced", "indexmap"])
def test_background_colour_and_drawing_over_existing_content(ctx, make_framebuffer, mode):
    framebuffer = make_framebuffer(SIZE, SIZE)
    with Scene(ctx, np.array([[0.0, 0.0]], dtype=np.float32), point_size=0.1, normalize="fixed",
               colormap="gray", background=(0.2, 0.0, 0.0), mode=mode) as scene:
        scene.update(activations=np.ones(1, dtype=np.float32))
        scene.draw(framebuffer, CAMERA)
        replaced = np.frombuffer(framebuffer.read(), np.uint8).reshape(SIZE, SIZE, 3)
        framebuffer.clear(0.0, 0.0, 0.4, 1.0)
        scene.draw(framebuffer, CAMERA, clear=False)
        added = np.frombuffer(framebuffer.read(), np.uint8).reshape(SIZE, SIZE, 3)
    np.testing.assert_allclose(replaced[0, 0], (51, 0, 0), atol=1)
    np.testing.assert_allclose(replaced[32, 32], (255, 255, 255), atol=1)
    np.testing.assert_allclose(added[0, 0], (0, 0, 102), atol=1)
    np.testing.assert_allclose(added[32, 32], (255, 255, 255), atol=1)
    assert 102 < added[32, 32 + 6, 2] and added[32, 32 + 6, 0] < 255  # the rim adds to the blue


@pytest.mark.parametrize("point_size", [0.004, 0.05])
def test_occupied_tiles_cover_every_pixel_of_the_index_map(ctx, point_size):
    rng = np.random.default_rng(5)
    positions = (rng.normal(size=(300, 2)) * 0.25).astype(np.float32)  # some fall outside the view
    width, height = 100, 70  # not multiples of the tile size
    camera = Camera(center=(0.1, -0.05), height=1.0)
    with Scene(ctx, positions, point_size=point_size, mode="indexmap") as scene:
        scene.snapshot(width, height, camera)
        index_map = scene._index_map
        covered = np.frombuffer(index_map.map_texture.read(), np.uint32).reshape(height, width) > 0
        projection = camera.matrix(aspect=width / height, flip_y=True)
        radius_px = point_size * height / camera.height
        tiles = occupied_tiles(positions, projection, (width, height), max(radius_px, 1.0) + 1.0)
        assert index_map.n_tiles == len(tiles)
    tile_grid = np.zeros((-(-height // TILE_PX), -(-width // TILE_PX)), dtype=bool)
    tile_grid[tiles[:, 1], tiles[:, 0]] = True
    rows, cols = np.nonzero(covered)  # rows of the map count from the bottom, like the tiles
    assert covered.any() and tile_grid[rows // TILE_PX, cols // TILE_PX].all()
    assert not tile_grid.all()  # empty tiles are skipped


def test_auto_mode_uses_the_index_map_once_the_geometry_is_still(ctx, make_framebuffer, caplog):
    framebuffer = make_framebuffer(48, 48)
    with grid_scene(ctx, "auto", indexmap_min_neurons=10) as scene, caplog.at_level(logging.INFO):
        modes = []
        for camera in (CAMERA, CAMERA, Camera(height=1.2), Camera(height=1.2)):
            scene.draw(framebuffer, camera)
            modes.append(scene.last_mode)
    assert modes == ["instanced", "indexmap", "instanced", "indexmap"]
    assert "render mode indexmap" in caplog.text


def test_auto_mode_stays_instanced_for_small_scenes(ctx):
    with grid_scene(ctx, "auto") as scene:
        scene.snapshot(32, 32, CAMERA)
        scene.snapshot(32, 32, CAMERA)
        assert scene.last_mode == "instanced"


def test_snapshot_default_camera_shows_every_neuron(ctx):
    rng = np.random.default_rng(2)
    positions = (rng.normal(size=(30, 2)) * [5.0, 1.0] + [100.0, -40.0]).astype(np.float32)
    with Scene(ctx, positions, point_size=0.2, normalize="fixed") as scene:
        scene.update(activations=np.ones(30, dtype=np.float32))
        image = scene.snapshot(80, 40)
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        assert lit(image).sum() > 30 and not lit(border[None]).any()


def test_invalid_arguments_name_the_argument(ctx, make_framebuffer):
    positions = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="positions must have shape"):
        Scene(ctx, np.zeros((3, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="mode must be one of"):
        Scene(ctx, positions, mode="fast")
    with pytest.raises(ValueError, match="edges must index vertices"):
        Scene(ctx, positions, edges=np.array([[0, 3]]))
    with pytest.raises(TypeError, match="ctx must be a moderngl.Context"):
        Scene(None, positions)
    with pytest.raises(ValueError, match=r"layer_colors must have shape \(layers >= 2, 3\)"):
        Scene(ctx, positions, np.array([0, 1, 1]), layer_colors=np.ones((1, 3)))
    with Scene(ctx, positions) as scene:
        with pytest.raises(ValueError, match=r"activations must have shape \(3,\)"):
            scene.update(activations=np.zeros(4))
        with pytest.raises(TypeError, match="camera must be a Camera"):
            scene.draw(make_framebuffer(4, 4), "camera")


def test_release_is_idempotent_and_draw_after_release_fails(ctx):
    scene = Scene(ctx, np.zeros((2, 2), dtype=np.float32), mode="indexmap")
    scene.snapshot(16, 16)
    scene.release()
    scene.release()
    with pytest.raises(RuntimeError, match="released"):
        scene.snapshot(16, 16)


def write_shader(folder, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


GOOD_STAGES = """\
#if defined VERTEX_SHADER
void main() { gl_Position = vec4(0.0, 0.0, 0.0, 1.0); }
#elif defined FRAGMENT_SHADER
out vec4 f_color;
void main() { f_color = vec4(COLOR); }
#endif
"""


def test_loader_injects_stage_defines_and_line(tmp_path):
    write_shader(tmp_path, "ok.glsl", "#version 330\n" + GOOD_STAGES)
    source = shader_source("ok.glsl", "FRAGMENT_SHADER", {"COLOR": 0.5}, root=tmp_path)
    lines = source.text.splitlines()
    assert lines[0] == "#version 330"
    assert "#define FRAGMENT_SHADER 1" in lines and "#define COLOR 0.5" in lines
    assert lines[lines.index("#line 2") + 1] == "#if defined VERTEX_SHADER"
    assert shader_source("ok.glsl", "FRAGMENT_SHADER", {"COLOR": 0.5}, root=tmp_path) is source


def test_compile_error_names_file_and_line(ctx, tmp_path):
    broken = GOOD_STAGES.replace("vec4(COLOR)", "vec4(undefined_name)")
    write_shader(tmp_path, "broken.glsl", "#version 330\n" + broken)
    with pytest.raises(ShaderError, match=r"broken\.glsl:6"):
        load_program(ctx, "broken.glsl", root=tmp_path)


def test_compile_errors_around_an_include_name_the_right_file_and_line(ctx, tmp_path):
    write_shader(tmp_path, "helpers.glsl", "// helpers\n\nfloat half_of(float x) { return x * undefined_scale; }\n")
    uses_helper = GOOD_STAGES.replace("vec4(COLOR)", "vec4(half_of(1.0))")
    write_shader(tmp_path, "main.glsl", '#version 330\n#include "helpers.glsl"\n' + uses_helper)
    with pytest.raises(ShaderError, match=r"helpers\.glsl:3"):
        load_program(ctx, "main.glsl", root=tmp_path)
    write_shader(tmp_path, "fine.glsl", "float half_of(float x) { return x * 0.5; }\n// two\n// three\n")
    broken_after = uses_helper.replace("vec4(half_of(1.0))", "vec4(half_of(undefined_name))")
    write_shader(tmp_path, "after.glsl", '#version 330\n#include "fine.glsl"\n' + broken_after)
    with pytest.raises(ShaderError, match=r"after\.glsl:7"):  # line 7 of after.glsl, whatever fine.glsl holds
        load_program(ctx, "after.glsl", root=tmp_path)


def test_malformed_shader_files_are_rejected(ctx, tmp_path):
    write_shader(tmp_path, "noversion.glsl", GOOD_STAGES)
    with pytest.raises(ShaderError, match=r"noversion\.glsl:1: the first line must be a #version"):
        load_program(ctx, "noversion.glsl", root=tmp_path)
    write_shader(tmp_path, "loop.glsl", '#version 330\n#include "loop.glsl"\n' + GOOD_STAGES)
    with pytest.raises(ShaderError, match="#include cycle"):
        load_program(ctx, "loop.glsl", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.glsl"):
        load_program(ctx, "missing.glsl", root=tmp_path)


@pytest.mark.parametrize("name", ["neurons.glsl", "edges.glsl", "index_map.glsl", "neuron_colors.glsl",
                                  "index_resolve.glsl"])
@pytest.mark.parametrize("layer_colors", [0, 1])
def test_packaged_programs_compile(ctx, name, layer_colors):
    load_program(ctx, name, {"LAYER_COLORS": layer_colors, "NEURON_TEXTURE_SHIFT": 12}).release()
