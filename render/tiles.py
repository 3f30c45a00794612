"""Which screen tiles a scene can light: the geometry behind skipping empty tiles in whole-frame passes.

Software rasterisers pay for every pixel a full-screen pass touches; most of a neuron picture is background.
These functions project world points to pixels and list the tiles that discs or boxes may overlap, in
O(points + tiles) with summed-area or difference tables, so the passes draw only those tiles.
"""
from __future__ import annotations

import numpy as np

TILE_PX = 16  # the index-map resolve pass skips empty tiles of this many pixels square


def pixel_coordinates(points: np.ndarray, projection: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """World points ``(N, 2)`` projected to framebuffer pixels (float64, from the bottom left, as ``gl_FragCoord``)."""
    matrix = projection.astype(np.float64)
    ndc = points.astype(np.float64) @ matrix[:2, :2] + matrix[3, :2]  # pyrr row-vector convention
    return (ndc + 1.0) * (0.5 * np.asarray(size, dtype=np.float64))


def tiles_overlapping(low: np.ndarray, high: np.ndarray, size: tuple[int, int], tile: tuple[int, int]) -> np.ndarray:
    """``(K, 2)`` int32 (column, row) of the ``tile`` (width, height) pixel tiles of a ``size`` framebuffer that
    overlap any of the boxes ``low[i]`` .. ``high[i]`` (pixels, (N, 2); rows from the bottom, as ``gl_FragCoord``).

    O(N + tiles): each box adds 1 inside its tile range of a difference table (four corner updates through
    one ``bincount``), whose 2-D cumulative sum counts the boxes over each tile.
    """
    columns, rows = -(-size[0] // tile[0]), -(-size[1] // tile[1])
    limit = np.array([columns, rows])
    first = np.clip(np.floor(low / tile), 0, limit).astype(np.int64)
    last = np.clip(np.floor(high / tile) + 1, 0, limit).astype(np.int64)
    corners = [(first[:, 1], first[:, 0], 1.0), (first[:, 1], last[:, 0], -1.0),
               (last[:, 1], first[:, 0], -1.0), (last[:, 1], last[:, 0], 1.0)]
    flat = np.concatenate([r * (columns + 1) + c for r, c, _ in corners])
    signs = np.repeat([sign for _, _, sign in corners], len(low))
    table = np.bincount(flat, weights=signs, minlength=(rows + 1) * (columns + 1)).reshape(rows + 1, columns + 1)
    tile_rows, tile_columns = np.nonzero(table.cumsum(axis=0).cumsum(axis=1)[:rows, :columns] > 0.5)
    return np.stack([tile_columns, tile_rows], axis=1).astype(np.int32)


def occupied_tiles(positions: np.ndarray, projection: np.ndarray, size: tuple[int, int], extent_px: float,
                   tile_px: int = TILE_PX) -> np.ndarray:
    """``(K, 2)`` int32 (column, row) of the ``tile_px`` tiles of a ``size`` framebuffer (rows from the
    bottom, as ``gl_FragCoord``) that a disc of ``extent_px`` around any projected position can touch.

    O(N + tiles): mark each centre's tile in a grid with a margin of ``r = ceil(extent / tile)`` tiles,
    then dilate by ``r`` with a summed-area table.
    """
    width, height = size
    columns, rows = -(-width // tile_px), -(-height // tile_px)
    margin = int(np.ceil((extent_px + 1.0) / tile_px))  # one pixel of slack for float32 rasterisation
    cells = np.floor(pixel_coordinates(positions, projection, size) / tile_px).astype(np.int64) + margin
    grid_shape = (rows + 2 * margin, columns + 2 * margin)
    inside = np.all((cells >= 0) & (cells < (grid_shape[1], grid_shape[0])), axis=1)
    grid = np.zeros(grid_shape, dtype=np.int32)
    grid[cells[inside, 1], cells[inside, 0]] = 1
    table = np.zeros((grid_shape[0] + 1, grid_shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = grid.cumsum(axis=0).cumsum(axis=1)
    span = 2 * margin + 1
    window = (table[span:span + rows, span:span + columns] - table[:rows, span:span + columns]
              - table[span:span + rows, :columns] + table[:rows, :columns])
    tile_rows, tile_columns = np.nonzero(window)
    return np.stack([tile_columns, tile_rows], axis=1).astype(np.int32)
