"""Layout benchmark: repulsion time per iteration vs N per backend, multilevel time and time to quality on
king grids and zoo graphs, peers (igraph, ForceAtlas2, OGDF FM^3) on the same graph with the same threads.

Shared by ``benchmarks/bench_layout.py`` and ``immersions bench layout``; writes one JSON record.
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .backends import get_backend
from .benchmark_options import PEERS, add_arguments
from .forces import ForceParams
from .graph import NeuronGraph
from .quality import neighborhood_preservation
from .simulate import ForceLayout
from .sources import resolve_graph
from .synthetic import grid_positions, king_grid

logger = logging.getLogger(__name__)

TARGET_NP = 0.95
NP_SAMPLES = 20_000
LARGE_GRAPH = 200_000  # vertices above which a fit is timed once (a 1M grid takes minutes on a CPU)


def run(args: argparse.Namespace) -> Path:
    """Run every part, write ``<out-dir>/layout_<machine>.json`` and return its path."""
    _set_threads(args.threads)
    record = {"benchmark": "layout", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "machine": machine_info(args), "parameters": {k: v for k, v in vars(args).items() if k != "func"},
              "defaults": json.loads(ForceParams().to_json()), "target_np": TARGET_NP,
              "notes": [f"times are medians of --repeats wall-clock runs (one run for graphs above {LARGE_GRAPH} "
                        "vertices, and for peers); peak_rss_mb is the process peak so far "
                        "(monotonic), cuda_peak_mb the CUDA allocator peak of the case",
                        "GPU rows are measured only when --device cuda is given on a CUDA machine"]}
    record["repulsion"] = [row for n in args.repulsion_sizes for row in time_repulsion(n, args)]
    record["king_grids"] = [time_grid(side, args) for side in args.grids]
    record["models"] = [time_model(name, args) for name in args.models]
    first = king_grid(args.grids[0]) if args.grids else None
    record["peers"] = [row for row in (time_peer(name, first, args) for name in args.peers) if row]\
        if first is not None and first.n_vertices <= args.peer_max else []
    out = Path(args.out_dir) / f"layout_{args.machine}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    return out


def machine_info(args: argparse.Namespace) -> dict:
    """Platform, CPU count, threads, library versions and the device."""
    info = {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "threads": args.threads, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "device": args.device,
            "load_average_at_start": os.getloadavg()}
    if torch.device(args.device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    return info


def _set_threads(threads: int) -> None:
    """Same thread count for torch, numba and peers."""
    torch.set_num_threads(threads)
    import numba
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], object], repeats: int, device: str) -> tuple[float, list[float]]:
    """One warm-up call, then the median of ``repeats`` timed calls (CUDA synchronised)."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def _memory(device: str) -> dict:
    """Peak memory so far and the 1-min load average, recorded with every row."""
    mem = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "load_1min": os.getloadavg()[0]}
    if torch.device(device).type == "cuda":
        mem["cuda_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        torch.cuda.reset_peak_memory_stats(device)
    return mem


def time_repulsion(n: int, args: argparse.Namespace) -> list[dict]:
    """Seconds per repulsion evaluation on a jittered grid of about ``n`` vertices, per backend."""
    side = int(round(np.sqrt(n)))
    rng = np.random.default_rng(args.seed)
    pos = grid_positions(side) + rng.normal(scale=0.1, size=(side * side, 2)).astype(np.float32)
    pos_t = torch.as_tensor(pos, device=args.device)[None]
    charge = torch.ones(1, side * side, device=args.device)
    params = ForceParams()
    rows = []
    for name in args.backends:
        if name == "exact" and side * side > args.exact_max:
            continue
        try:
            fn = get_backend(name, args.device)
            median, times = _timed(lambda: fn(pos_t, charge, params.k, params.theta, softening=params.softening),
                                   args.repeats, args.device)
        except (ValueError, RuntimeError) as exc:
            logger.warning("repulsion %s at N=%d skipped: %s", name, side * side, exc)
            continue
        rows.append({"backend": name, "n": side * side, "seconds": median, "times": times,
                     **_memory(args.device)})
        logger.info("repulsion %-9s N=%8d %.4f s", name, side * side, median)
    return rows


def _fit(graph: NeuronGraph, params: ForceParams, args: argparse.Namespace, repeats: int
         ) -> tuple[float, list[float], float, int]:
    """Median seconds of ``repeats`` full multilevel fits (the same layout each time, one seed), the times,
    its neighbourhood preservation and iterations."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        layout = ForceLayout(params, device=args.device, seed=args.seed).fit(graph)
        _sync(args.device)
        times.append(time.perf_counter() - start)
    score = neighborhood_preservation(graph, layout.positions[0], n_samples=NP_SAMPLES, seed=args.seed)
    return statistics.median(times), times, score, layout.iteration


def time_grid(side: int, args: argparse.Namespace) -> dict:
    """Multilevel time with the default schedule, and the fastest finest-level cap reaching the target."""
    graph = king_grid(side)
    ForceLayout(ForceParams(max_iter=2), device=args.device).fit(king_grid(8))  # compile kernels
    repeats = 1 if graph.n_vertices > LARGE_GRAPH else args.repeats
    seconds, times, score, iterations = _fit(graph, ForceParams(), args, repeats)
    row = {"graph": f"king-grid:{side}", "n": graph.n_vertices, "edges": graph.n_edges, "seconds": seconds,
           "times": times, "np": score, "iterations": iterations, **_memory(args.device), "time_to_np": None,
           "sweep": []}
    logger.info("king grid %d: %.2f s, NP %.4f", side, seconds, score)
    if graph.n_vertices > LARGE_GRAPH:
        row["time_to_np"] = seconds if score >= TARGET_NP else None
        return row
    for fine_iter in args.fine_iters:
        t, ts, s, its = _fit(graph, ForceParams(fine_iter=fine_iter), args, repeats)
        row["sweep"].append({"fine_iter": fine_iter, "seconds": t, "times": ts, "np": s, "iterations": its})
        logger.info("king grid %d, fine_iter %d: %.2f s, NP %.4f", side, fine_iter, t, s)
        if s >= TARGET_NP:
            row["time_to_np"] = t
            break
    return row


def time_model(name: str, args: argparse.Namespace) -> dict:
    """Multilevel time and quality on a zoo model's graph (or why it was skipped)."""
    try:
        graph = resolve_graph(name, seed=args.seed, max_edges=args.max_edges)
    except ValueError as exc:
        logger.warning("%s skipped: %s", name, exc)
        return {"graph": name, "skipped": str(exc)}
    repeats = 1 if graph.n_vertices > LARGE_GRAPH else args.repeats
    seconds, times, score, iterations = _fit(graph, ForceParams(), args, repeats)
    logger.info("%s: %d vertices, %.2f s, NP %.4f", name, graph.n_vertices, seconds, score)
    return {"graph": name, "n": graph.n_vertices, "edges": graph.n_edges, "seconds": seconds, "times": times,
            "np": score,
            "iterations": iterations, **_memory(args.device)}


@dataclass(frozen=True)
class Peer:
    """A peer layout ready to run: ``run()`` is the timed layout call, ``read(result)`` the untimed read-back
    of its positions ``(N, 2)``; ``start`` says whether it starts from the shared seeded positions."""

    run: Callable[[], object]
    read: Callable[[object], np.ndarray]
    start: str


def time_peer(name: str, graph: NeuronGraph, args: argparse.Namespace) -> dict | None:
    """A peer layout from seeded random positions (the same start for all that accept one), the time of its
    layout call alone, the graph conversion and read-back times, and its quality."""
    start_pos = (np.random.default_rng(args.seed).random((graph.n_vertices, 2)) - 0.5) * np.sqrt(graph.n_vertices)
    start = time.perf_counter()
    try:
        peer = _peer(name, graph, start_pos, args.seed)
    except ImportError as exc:
        logger.warning("peer %s not installed: %s", name, exc)
        return None
    conversion = time.perf_counter() - start
    start = time.perf_counter()
    result = peer.run()
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    pos = peer.read(result)
    readback = time.perf_counter() - start
    if pos.shape != (graph.n_vertices, 2) or not np.isfinite(pos).all():
        raise RuntimeError(f"peer {name} returned positions of shape {pos.shape} with "
                           f"{int(np.count_nonzero(~np.isfinite(pos)))} non-finite entries; expected "
                           f"({graph.n_vertices}, 2), all finite")
    score = neighborhood_preservation(graph, pos, n_samples=NP_SAMPLES, seed=args.seed)
    logger.info("peer %s: %.2f s (conversion %.2f s), NP %.4f", name, seconds, conversion, score)
    return {"peer": name, "graph": f"king-grid:{int(np.sqrt(graph.n_vertices))}", "n": graph.n_vertices,
            "seconds": seconds, "conversion_seconds": conversion, "readback_seconds": readback,
            "start": peer.start, "np": score, **_memory("cpu")}


def _peer(name: str, graph: NeuronGraph, start_pos: np.ndarray, seed: int) -> Peer:
    """Peer ``name`` with its graph converted; ImportError when its package is missing."""
    shared = "shared seeded positions"
    if name in ("igraph_fr", "igraph_drl"):
        import igraph
        g = igraph.Graph(n=graph.n_vertices, edges=graph.edges.tolist())
        if name == "igraph_fr":
            return Peer(lambda: g.layout_fruchterman_reingold(seed=start_pos.tolist(), grid="grid"),
                        lambda layout: np.asarray(layout.coords), shared)
        return Peer(lambda: g.layout_drl(seed=start_pos.tolist()), lambda layout: np.asarray(layout.coords), shared)
    if name == "fa2":
        import scipy.sparse as sp
        from fa2_modified import ForceAtlas2
        adj = sp.coo_matrix((np.ones(graph.n_edges), (graph.edges[:, 0], graph.edges[:, 1])),
                            shape=(graph.n_vertices,) * 2).tocsr()
        adj = adj + adj.T
        fa2 = ForceAtlas2(barnesHutOptimize=True, verbose=False)
        return Peer(lambda: fa2.forceatlas2(adj, pos=start_pos.copy(), iterations=100), np.asarray, shared)
    if name == "ogdf_fmmm":
        return _ogdf_fmmm(graph, seed)
    raise ValueError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")


def _ogdf_fmmm(graph: NeuronGraph, seed: int) -> Peer:
    """OGDF's FM^3 (``FMMMLayout``, single-threaded): high-level options at their defaults (quality versus
    speed "beautiful and fast"), seeded.

    The bindings do not expose FM^3's keep-positions placement, so it starts from its own seeded initial
    placement rather than the shared start positions.
    """
    import ogdf
    g = ogdf.Graph()
    nodes = [g.new_node() for _ in range(graph.n_vertices)]
    for s, t in graph.edges.tolist():
        g.new_edge(nodes[s], nodes[t])
    attributes = ogdf.GraphAttributes(g, ogdf.NODE_GRAPHICS)
    fmmm = ogdf.FMMMLayout()
    fmmm.set_use_high_level_options(True)
    fmmm.set_new_initial_placement(False)
    fmmm.set_rand_seed(seed)

    def read(ga: "ogdf.GraphAttributes") -> np.ndarray:
        return np.array([(ga.x(v), ga.y(v)) for v in nodes], np.float64).reshape(len(nodes), 2)

    def run() -> "ogdf.GraphAttributes":
        fmmm.call(attributes)
        return attributes

    return Peer(run, read, "FM^3's own seeded initial placement")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry of ``benchmarks/bench_layout.py``."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logger.info("wrote %s", run(args))
    return 0
