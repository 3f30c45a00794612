"""Latent-map benchmark: ``make_map`` (features, PCA, t-SNE, pictures, page and clips) on ~1,000 clips of real
recordings, with scikit-learn's t-SNE timed as the peer of openTSNE on the same features.

The recordings are game soundtracks from Debian packages extracted under ``--pkgs`` (music only; wesnoth and
nexuiz music are never used). A manifest of up to ``--files-per-source`` tracks per package is written to
``--work``, labelled by package (``source``) and split by ``track``. Decoding is timed once (the first run
fills ``--cache-dir``); the map is then timed ``--repeats`` times on the decoded cache, as a second map of
the same corpus would run. The classifiers, which the target leaves out, are timed once beside it.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from immersions.cpc.checkpoint import load_model
from immersions.cpc.data import AudioCorpus
from immersions.cpc.latent_map import classify, labelled_clips, project
from immersions.cpc.train import set_cpu_threads
from immersions.render.map_app import MapSettings, make_map

SOURCES = {
    "drascula": "drascula-music/usr/share/scummvm/drascula/audio/*.ogg",
    "ufoai": "ufoai-music/extracted/music/*.ogg",
    "singularity": "singularity-music/usr/share/games/singularity/music/*.ogg",
    "hyperrogue": "hyperrogue-music/usr/share/hyperrogue/music/*.ogg",
    "supertuxkart": "supertuxkart-data/usr/share/games/supertuxkart/data/music/*.ogg",
    "fillets-ng": "fillets-ng-data/usr/share/games/fillets-ng/music/*.ogg",
}
FORBIDDEN = ("wesnoth", "nexuiz")


def write_manifest(pkgs: Path, work: Path, files_per_source: int) -> Path:
    """A manifest of the first ``files_per_source`` tracks (by name) of every source, absolute paths."""
    rows = []
    for source, pattern in SOURCES.items():
        tracks = sorted(pkgs.glob(pattern))[:files_per_source]
        if not tracks:
            raise FileNotFoundError(f"no tracks of {source} under {pkgs / pattern}")
        for track in tracks:
            if any(word in str(track).lower() for word in FORBIDDEN):
                raise ValueError(f"{track} belongs to a package this project never uses")
            rows.append({"path": str(track), "composer": source, "piece": f"{source}/{track.stem}",
                         "source": source, "track": f"{source}/{track.stem}"})
    work.mkdir(parents=True, exist_ok=True)
    manifest = work / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def machine_info() -> dict:
    return {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pkgs", type=Path, default=Path("/work/data/pkgs"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_map"), help="manifest, cache and maps")
    parser.add_argument("--cache-dir", type=Path, default=None, help="decoded audio (default: WORK/cache)")
    parser.add_argument("--files-per-source", type=int, default=16)
    parser.add_argument("--clips-per-file", type=int, default=12)
    parser.add_argument("--model", default="lean")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-classifiers", action="store_true", help="time the map and t-SNE peers only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--machine", default="cpu2", help="name in the output file")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    set_cpu_threads(args.threads)
    model = load_model(args.model)
    manifest = write_manifest(args.pkgs, args.work, args.files_per_source)
    cache = args.cache_dir or args.work / "cache"
    warm_before = cache.is_dir() and any(cache.iterdir())
    load = [os.getloadavg()]
    start = time.perf_counter()
    corpus = AudioCorpus.from_manifest(manifest, model.config.sample_rate, model.clip_samples(6), cache_dir=cache)
    decode_s = time.perf_counter() - start
    settings = MapSettings(label="source", group_by="track", methods=("pca", "tsne"), kinds=("c",),
                           clips_per_file=args.clips_per_file, classifiers=(), seed=args.seed, n_jobs=args.threads)
    runs = []
    for repeat in range(args.repeats):
        start, cpu = time.perf_counter(), time.process_time()
        report = make_map(model, corpus, args.work / f"map_{repeat}", settings, title="lean: game music by source")
        runs.append({"total_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
                     "stages_s": report["seconds"]})
        load.append(os.getloadavg())
        print(f"map {repeat}: {runs[-1]['total_s']:.1f} s ({runs[-1]['cpu_s']:.1f} CPU s) {report['seconds']}")
    clips = labelled_clips(corpus, "source", args.clips_per_file, group_by="track")
    features = np.load(args.work / "map_0" / "features.npz")["c"]
    peers = []
    for repeat in range(args.repeats):
        from sklearn.manifold import TSNE

        start = time.perf_counter()
        TSNE(n_components=2, init="pca", random_state=args.seed, n_jobs=args.threads).fit_transform(
            (features - features.mean(0)) / (features.std(0) + 1e-12))
        peers.append(time.perf_counter() - start)
    start = time.perf_counter()
    opentsne = project(features, "tsne", seed=args.seed, n_jobs=args.threads, progress=False)
    opentsne_s = time.perf_counter() - start
    result, classify_s = None, None
    if not args.skip_classifiers:
        start = time.perf_counter()
        result = classify(features, clips, label="source", seed=args.seed)
        classify_s = time.perf_counter() - start
    load.append(os.getloadavg())
    stages = sorted(runs[0]["stages_s"])
    record = {
        "benchmark": "map",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_1_5_15": [list(values) for values in load],
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "corpus": {"files": len(corpus), "clips": len(clips), "sources": sorted(set(clips.labels)),
                   "tracks": len(set(clips.groups)), "clip_seconds": corpus.clip_samples / corpus.sample_rate,
                   "audio_hours": sum(len(a) for a in corpus.audio) / corpus.sample_rate / 3600},
        "decode_s": decode_s, "decode_cache_was_warm": warm_before,
        "map_median_s": statistics.median(run["total_s"] for run in runs),
        "map_cpu_median_s": statistics.median(run["cpu_s"] for run in runs),
        "map_stage_median_s": {stage: statistics.median(run["stages_s"][stage] for run in runs) for stage in stages},
        "map_runs": runs,
        "tsne_peers_s": {"openTSNE (ours, in make_map)": statistics.median(run["stages_s"]["tsne"] for run in runs),
                         "openTSNE alone": opentsne_s,
                         "scikit-learn TSNE (peer), median": statistics.median(peers), "scikit-learn runs": peers},
        "tsne_shape": list(opentsne.shape),
        "classifiers": None if result is None else {
            "seconds": classify_s, "chance": result.chance_accuracy,
            **{s.name: {"accuracy": s.accuracy, "macro_f1": s.macro_f1, "cv_accuracy": s.cv_accuracy,
                        "setting": s.setting} for s in result.scores},
            "train_tracks": len(result.train_groups), "test_tracks": len(result.test_groups)},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"map_{args.machine}.json"
    path.write_text(json.dumps(record, indent=2))
    print(json.dumps({k: record[k] for k in ("corpus", "decode_s", "map_median_s", "map_cpu_median_s", "map_stage_median_s",
                                             "tsne_peers_s", "classifiers")}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
