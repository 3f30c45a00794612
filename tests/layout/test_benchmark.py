"""Benchmark peers on a tiny king grid: they run and hand back finite positions of the right shape."""
import argparse

import numpy as np
import pytest

from immersions.layout import benchmark
from immersions.layout.synthetic import king_grid


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    benchmark.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_ogdf_fmmm_peer_lays_out_a_king_grid():
    pytest.importorskip("ogdf")
    graph = king_grid(12)
    peer = benchmark._peer("ogdf_fmmm", graph, np.zeros((graph.n_vertices, 2)), seed=0)
    pos = peer.read(peer.run())
    assert pos.shape == (graph.n_vertices, 2) and np.isfinite(pos).all()
    assert np.ptp(pos, axis=0).min() > 0  # spread out, not collapsed onto one point
    row = benchmark.time_peer("ogdf_fmmm", graph, _args("--seed", "0"))
    assert row["peer"] == "ogdf_fmmm" and row["n"] == graph.n_vertices and 0 <= row["np"] <= 1
    assert row["seconds"] > 0 and row["conversion_seconds"] > 0


def test_unknown_peers_are_refused():
    with pytest.raises(SystemExit):
        _args("--peers", "no-such-peer")
    with pytest.raises(ValueError, match="no-such-peer"):
        benchmark._peer("no-such-peer", king_grid(3), np.zeros((9, 2)), seed=0)
