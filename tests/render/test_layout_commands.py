"""``immersions layout`` and ``immersions bench layout`` end to end on tiny graphs."""
import json

import imageio.v3 as iio
import numpy as np
import torch

from immersions.layout.graph_io import save_graph
from immersions.layout.io import load_layout
from immersions.layout.synthetic import king_grid
from immersions.render.cli import main


def test_layout_command_writes_layout_and_picture(tmp_path, capsys):
    out = tmp_path / "grid.npz"
    assert main(["layout", "king-grid:8", "--out", str(out), "--size", "64", "--quality"]) == 0
    layout = load_layout(out)
    assert layout.positions.shape == (1, 64, 2) and np.isfinite(layout.positions).all()
    picture = iio.imread(tmp_path / "grid.png")
    assert picture.shape == (64, 64, 3)
    assert (picture != 255).any(axis=-1).sum() >= 32  # the points are drawn
    assert "neighbourhood preservation" in capsys.readouterr().out


def test_layout_command_reads_a_saved_graph_and_reports_bad_names(tmp_path, capsys):
    graph_path = tmp_path / "g.npz"
    save_graph(king_grid(4), graph_path)
    assert main(["layout", str(graph_path), "--out", str(tmp_path / "l.npz"), "--png", "none"]) == 0
    assert not (tmp_path / "l.png").exists()
    assert main(["layout", "no-such-model"]) == 1
    assert "unknown graph 'no-such-model'" in capsys.readouterr().err


def test_bench_layout_writes_a_json_record(tmp_path):
    threads = torch.get_num_threads()
    argv = ["bench", "layout", "--repulsion-sizes", "400", "--backends", "exact", "--grids", "8",
            "--fine-iters", "5", "--models", "--peers", "--repeats", "1", "--threads", str(threads),
            "--machine", "test", "--out-dir", str(tmp_path)]
    assert main(argv) == 0
    record = json.loads((tmp_path / "layout_test.json").read_text())
    assert record["repulsion"][0]["backend"] == "exact" and record["repulsion"][0]["seconds"] > 0
    grid = record["king_grids"][0]
    assert grid["n"] == 64 and 0 <= grid["np"] <= 1
    assert record["machine"]["cpu_count"] >= 1 and record["machine"]["torch"] == torch.__version__


def test_layout_command_reads_an_edge_list_with_the_structural_coarsening(tmp_path, capsys):
    edges = tmp_path / "ring.csv"
    edges.write_text("source,target\n" + "\n".join(f"v{i},v{(i + 1) % 40}" for i in range(40)) + "\n")
    out = tmp_path / "ring_layout.npz"
    assert main(["layout", str(edges), "--coarsening", "graph", "--out", str(out), "--png", "none",
                 "--quality"]) == 0
    assert load_layout(out).positions.shape == (1, 40, 2)
    assert "neighbourhood preservation" in capsys.readouterr().out
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1 2 3\n")
    assert main(["layout", str(bad)]) == 1
    assert "bad.txt' line 1" in capsys.readouterr().err
