"""Layout of graph families that carry no useful numbering: ours (both coarsenings) against OGDF FM^3,
graph-tool's sfdp and igraph, in one script, on the same graph files and the same threads.

Every (family, method, repeat) runs in its own child process, so its peak RSS is its own; the child loads the
graph, times only the layout (wall clock and the process's CPU time: on a loaded machine the CPU time is the
fairer comparison) and hands the positions back. Scores come from ``layout/quality.py`` in the
parent (the same scorer for every method). graph-tool is Debian's ``python3-graph-tool`` and runs under the
system Python. The record (``benchmarks/results/layout_families_<machine>.json``) holds the machine, the
load before and after every run, the median over repeats and every single time; ``--sheet`` draws every
layout side by side, coloured by hop distance from one vertex (a folded layout shows as mixed colours).

    python benchmarks/bench_layout_families.py --threads 2 --machine cpu2
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FAMILIES = ("grid224", "grid1024", "torus", "geometric", "tree", "barabasi-albert", "audio", "cpc-lean",
            "resnet18", "vgg16")
METHODS = ("ours_graph", "ours_axes", "ours_graph_fixed", "fm3", "sfdp", "igraph_fr")
TARGET_NP = 0.95
SYSTEM_PYTHON = "/usr/bin/python3"

SFDP_CHILD = """
import json, resource, sys, time
import numpy as np
import graph_tool.all as gt
edges, n, out, seed, threads = np.load(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
gt.openmp_set_num_threads(threads)
gt.seed_rng(seed)
np.random.seed(seed)
g = gt.Graph(directed=False)
g.add_vertex(n)
g.add_edge_list(edges)
start, cpu = time.perf_counter(), time.process_time()
pos = gt.sfdp_layout(g)
seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
np.save(out, pos.get_2d_array([0, 1]).T)
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def build_family(name: str):
    """The graph of a family (numbered so the numbering carries no geometry, except the neuron graphs)."""
    from immersions.layout import synthetic
    if name.startswith("grid"):
        return synthetic.relabel(synthetic.king_grid(int(name[4:])), seed=1)[0]
    if name == "torus":
        return synthetic.torus_3d(30, seed=0)
    if name == "geometric":
        return synthetic.random_geometric(20_000, 8, seed=0)
    if name == "tree":
        return synthetic.random_tree(20_000, seed=0)
    if name == "barabasi-albert":
        return synthetic.barabasi_albert(20_000, 3, seed=0)
    if name == "cpc-lean":
        from immersions.cpc.checkpoint import load_pretrained
        from immersions.render.app import AnalysisNetwork, neuron_graph
        model = load_pretrained("lean")
        return neuron_graph(AnalysisNetwork(model), model.config.n_bins)
    from immersions.layout.sources import resolve_graph
    return resolve_graph(name)


def child(method: str, graph_path: str, out: str, seed: int, threads: int) -> dict:
    """Lay out the saved graph with ``method``; save positions to ``out``; return time and peak RSS."""
    import torch
    torch.set_num_threads(threads)
    from immersions.layout.graph_io import load_graph
    graph = load_graph(graph_path)
    extra = {}
    if method.startswith("ours"):
        from immersions.layout.forces import ForceParams
        from immersions.layout.simulate import ForceLayout
        from immersions.layout.synthetic import king_grid
        params = ForceParams(untangle_iter=0) if method == "ours_graph_fixed" else None
        coarsening = "axes" if method == "ours_axes" else "graph"
        ForceLayout(params, seed=seed, coarsening=coarsening).fit(king_grid(8))   # compile the kernels
        start, cpu = time.perf_counter(), time.process_time()
        layout = ForceLayout(params, seed=seed, coarsening=coarsening).fit(graph)
        seconds, extra["cpu_seconds"] = time.perf_counter() - start, time.process_time() - cpu
        positions, extra["iterations"] = layout.positions[0], layout.iteration
    elif method == "fm3":
        from immersions.layout.benchmark import _ogdf_fmmm
        start = time.perf_counter()
        peer = _ogdf_fmmm(graph, seed)
        extra["conversion_seconds"] = time.perf_counter() - start
        start, cpu = time.perf_counter(), time.process_time()
        result = peer.run()
        seconds, extra["cpu_seconds"] = time.perf_counter() - start, time.process_time() - cpu
        positions = peer.read(result)
    elif method == "igraph_fr":
        import igraph
        start = time.perf_counter()
        g = igraph.Graph(n=graph.n_vertices, edges=graph.edges.tolist())
        extra["conversion_seconds"] = time.perf_counter() - start
        init = np.random.default_rng(seed).random((graph.n_vertices, 2)) * np.sqrt(graph.n_vertices)
        start, cpu = time.perf_counter(), time.process_time()
        positions = np.asarray(g.layout_fruchterman_reingold(seed=init.tolist(), grid="auto").coords)
        seconds, extra["cpu_seconds"] = time.perf_counter() - start, time.process_time() - cpu
    else:
        raise ValueError(f"unknown method {method!r}; choose from {METHODS}")
    np.save(out, np.asarray(positions, np.float64))
    return {"seconds": seconds, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **extra}


def run_child(method: str, graph_path: Path, edges_path: Path, n: int, seed: int, threads: int,
              timeout: float) -> tuple[dict, np.ndarray | None]:
    """One timed layout in a fresh process; positions or ``None`` with the error."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "positions.npy"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads)}
        if method == "sfdp":
            cmd = [SYSTEM_PYTHON, "-c", SFDP_CHILD, str(edges_path), str(n), str(out), str(seed), str(threads)]
            env.pop("PYTHONPATH", None)
        else:
            cmd = [sys.executable, __file__, "--child", method, str(graph_path), str(out), str(seed), str(threads)]
        load_before = os.getloadavg()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout:.0f} s", "load_before": load_before}, None
        row = {"load_before": load_before, "load_after": os.getloadavg()}
        if done.returncode != 0:
            row["error"] = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
            return row, None
        row.update(json.loads(done.stdout.strip().splitlines()[-1]))
        return row, np.load(out)


def hop_colours(graph) -> np.ndarray:
    """RGB per vertex from the hop distance to the first vertex of largest degree (viridis)."""
    import matplotlib
    from scipy.sparse.csgraph import shortest_path

    from immersions.layout.quality import _adjacency
    adj = _adjacency(graph)
    hops = shortest_path(adj, unweighted=True, indices=int(np.argmax(np.diff(adj.indptr))))
    finite = np.isfinite(hops)
    scaled = np.where(finite, hops / max(hops[finite].max(), 1), 1.0)
    return (matplotlib.colormaps["viridis"](scaled)[:, :3] * 255).astype(np.uint8)


def draw(positions: np.ndarray, colours: np.ndarray, size: int) -> np.ndarray:
    """A ``size`` square picture of the layout, points coloured per vertex."""
    xy = positions[:, :2]
    low, span = xy.min(0), max(float(np.ptp(xy, 0).max()), 1e-12)
    px = ((xy - low) / span * (size - 5) + 2).astype(np.int64)
    image = np.full((size, size, 3), 255, np.uint8)
    radius = 1 if len(xy) < 30_000 else 0   # 3 x 3 dots where there is room
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            image[np.clip(size - 1 - px[:, 1] + dy, 0, size - 1), np.clip(px[:, 0] + dx, 0, size - 1)] = colours
    return image


def summarise(rows: list[dict], target: float) -> dict:
    """Median time, NP, stress and peak RSS over the repeats that finished."""
    good = [r for r in rows if "seconds" in r]
    if not good:
        return {"error": rows[0].get("error", "no run finished")}
    keys = ("seconds", "cpu_seconds", "np", "stress", "peak_rss_mib")
    median = {key: statistics.median(r[key] for r in good) for key in keys if all(key in r for r in good)}
    median["time_to_target"] = median["seconds"] if median["np"] >= target else None
    return median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="runs per method below --large-vertices")
    parser.add_argument("--peer-repeats", type=int, default=None,
                        help="runs per peer (FM^3, sfdp, igraph); default --repeats")
    parser.add_argument("--large-vertices", type=int, default=200_000, help="graphs this large run once")
    parser.add_argument("--peer-max-edges", type=int, default=5_000_000,
                        help="peers (FM^3, sfdp, igraph) skip graphs with more edges")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run before it is abandoned")
    parser.add_argument("--machine", default="cpu2")
    parser.add_argument("--out", default=None,
                        help="JSON to write (default: benchmarks/results/layout_families_<machine>.json)")
    parser.add_argument("--sheet", default=None, help="PNG of every layout side by side (default: next to the JSON)")
    parser.add_argument("--cell", type=int, default=256, help="pixels per layout on the sheet")
    args = parser.parse_args(argv)

    import imageio.v3 as iio

    from immersions.layout.graph_io import save_graph
    from immersions.layout.quality import neighborhood_preservation, stress
    record = {"machine": {"name": args.machine, "platform": platform.platform(), "cpu_count": os.cpu_count(),
                          "threads": args.threads, "python": platform.python_version(),
                          "load_average_at_start": os.getloadavg()},
              "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "target_np": TARGET_NP,
              "np_samples": 20_000, "stress_sources": 32, "families": {}}
    json_path = Path(args.out or Path(__file__).parent / "results" / f"layout_families_{args.machine}.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    cells: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families:
            start = time.perf_counter()
            graph = build_family(family)
            graph_path, edges_path = Path(tmp) / f"{family}.npz", Path(tmp) / f"{family}_edges.npy"
            save_graph(graph, graph_path)
            np.save(edges_path, graph.edges.astype(np.int64))
            entry = {"vertices": graph.n_vertices, "edges": graph.n_edges, "layers": len(graph.layers),
                     "build_seconds": time.perf_counter() - start, "methods": {}}
            colours = hop_colours(graph)
            repeats = 1 if graph.n_vertices >= args.large_vertices else args.repeats
            print(f"{family}: {graph.n_vertices} vertices, {graph.n_edges} edges, {repeats} repeats", flush=True)
            for method in args.methods:
                if not method.startswith("ours") and graph.n_edges > args.peer_max_edges:
                    entry["methods"][method] = {"skipped": f"more than --peer-max-edges {args.peer_max_edges}"}
                    continue
                if method == "ours_axes" and len(graph.layers) == 1 and graph.layers[0].channels == 1:
                    entry["methods"][method] = {"skipped": "a 1 x N layer has no axes to merge along"}
                    continue
                rows = []
                is_peer = not method.startswith("ours")
                for _ in range(min(repeats, args.peer_repeats) if is_peer and args.peer_repeats else repeats):
                    row, positions = run_child(method, graph_path, edges_path, graph.n_vertices, 0, args.threads,
                                               args.timeout)
                    if positions is not None:
                        row["np"] = neighborhood_preservation(graph, positions, n_samples=20_000)
                        row["stress"] = stress(graph, positions)
                        cells.setdefault(family, {})[method] = draw(positions, colours, args.cell)
                    rows.append(row)
                    print(f"  {method}: {json.dumps({k: v for k, v in row.items() if k != 'load_before'})}",
                          flush=True)
                    if positions is None:
                        break
                entry["methods"][method] = {**summarise(rows, TARGET_NP), "runs": rows}
            record["families"][family] = entry
            tmp_json = json_path.with_suffix(".tmp")
            tmp_json.write_text(json.dumps(record, indent=1))
            os.replace(tmp_json, json_path)
    record["machine"]["load_average_at_end"] = os.getloadavg()
    tmp_json = json_path.with_suffix(".tmp")
    tmp_json.write_text(json.dumps(record, indent=1))
    os.replace(tmp_json, json_path)
    sheet = Path(args.sheet) if args.sheet else json_path.with_suffix(".png")
    blank = np.full((args.cell, args.cell, 3), 230, np.uint8)
    rows = [np.concatenate([cells.get(f, {}).get(m, blank) for m in args.methods], axis=1)
            for f in args.families]
    grid = np.concatenate(rows, axis=0)
    iio.imwrite(sheet.with_suffix(".tmp.png"), grid)
    os.replace(sheet.with_suffix(".tmp.png"), sheet)
    print(f"wrote {json_path} and {sheet} (rows: {', '.join(args.families)}; columns: {', '.join(args.methods)})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        method, graph_path, out, seed, threads = sys.argv[2:7]
        print(json.dumps(child(method, graph_path, out, int(seed), int(threads))))
        sys.exit(0)
    sys.exit(main())
