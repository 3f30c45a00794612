"""``immersions probe MODEL DATA``: linear probes of a CPC model's contexts against chance and a baseline."""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from immersions.cpc.settings import PROBE_REGULARIZATION, TRACK_CLIP_SECONDS

HELP = "linear probes (composer, instrument, track, ...) of a CPC model"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``probe`` command."""
    parser = subparsers.add_parser(
        "probe", help=HELP,
        description="Linear probes of a CPC model's mean-pooled contexts c. On a score corpus: composer and "
                    "instrument, split by piece. On a recordings corpus (immersions data recordings): the "
                    "article's track identification, one task per source: N tracks cut into 4-s clips, fitted on "
                    "the first 70 %% of each and tested on the last 30 %%, beside the untrained network, the "
                    "model's input statistics, a supervised network and chance.")
    parser.add_argument("model", help="checkpoint .pt, or the name of a shipped model (e.g. lean)")
    parser.add_argument("data", help="manifest .csv/.json, or a corpus folder holding manifest.csv")
    parser.add_argument("--tasks", nargs="+", default=None,
                        help="manifest columns to classify, or 'track' for track identification (default: track "
                             "on a recordings corpus, else composer instrument)")
    parser.add_argument("--tracks", type=int, default=15, help="tracks per track task (default: %(default)s)")
    parser.add_argument("--clip-seconds", type=float, default=TRACK_CLIP_SECONDS,
                        help="clip length of the track task (default: %(default)s, as in the article)")
    parser.add_argument("--sources", nargs="+", default=None,
                        help="sources with a track task each (default: every source of the manifest)")
    parser.add_argument("--untrained-seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="initialisations of the untrained network probed on the track task (default: %(default)s)")
    parser.add_argument("--taps", nargs="*", default=[], metavar="TAP",
                        help="also probe these taps' outputs on the track task; 'all' for every tap")
    parser.add_argument("--clips-per-file", type=int, default=8)
    parser.add_argument("--test-fraction", type=float, default=0.25, help="fraction of pieces held out")
    parser.add_argument("--baseline-steps", type=int, default=0,
                        help="train the supervised-from-scratch baseline for this many steps (0: skip)")
    parser.add_argument("--baseline-lr", type=float, default=1e-3)
    parser.add_argument("--baseline-validation", type=float, default=0.2,
                        help="fraction of training pieces the baseline early-stops on; 0: train for exactly "
                             "--baseline-steps (default: %(default)s)")
    parser.add_argument("--baseline-eval-every", type=int, default=250,
                        help="baseline steps between validations (default: %(default)s)")
    parser.add_argument("--labelled-pieces", type=int, default=None, metavar="N",
                        help="probe and baseline learn from only N training pieces per class (seeded); the test "
                             "pieces stay the same (default: all)")
    parser.add_argument("--regularization", type=float, nargs="+", default=list(PROBE_REGULARIZATION),
                        help="inverse regularisation C of the probe; several: chosen by cross-validation over "
                             "the training pieces (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, nargs="+", default=[0], metavar="SEED",
                        help="piece-wise split seed; several: one split each, reported as mean ± std "
                             "(default: %(default)s)")
    parser.add_argument("--n-context", type=int, default=6, help="contexts per clip (sets the clip length)")
    parser.add_argument("--cache-dir", default=None, help="folder for decoded .npy audio")
    parser.add_argument("--device", default=None, help="torch device, cpu or cuda[:N] (default: cuda when there is "
                                                        "one, else cpu)")
    parser.add_argument("--out", default=None, help="write the report as JSON here")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice; 1 is fastest on a busy machine)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the model and data, probe, print the table and optionally write JSON."""
    from immersions.cpc.checkpoint import load_model
    from immersions.cpc.data import AudioCorpus
    from immersions.cpc.probe import format_split_table, format_table, run_probe_splits, splits_to_dict
    from immersions.cpc.train import set_cpu_threads

    from ..app_inputs import check_device

    set_cpu_threads(args.threads)
    model = load_model(args.model, check_device(args.device))
    if args.tasks == ["track"] or (args.tasks is None and _has_sources(args.data)):
        return _run_tracks(args, model)
    corpus = AudioCorpus.from_source(args.data, model.config.sample_rate, model.clip_samples(args.n_context),
                                     cache_dir=args.cache_dir)
    reports = run_probe_splits(
        model, corpus, args.tasks or ["composer", "instrument"], seeds=args.seed, clips_per_file=args.clips_per_file,
        test_fraction=args.test_fraction, batch_size=args.batch_size, baseline_steps=args.baseline_steps,
        baseline_lr=args.baseline_lr, model_name=Path(args.model).stem, regularization=args.regularization,
        baseline_validation=args.baseline_validation or None, baseline_eval_every=args.baseline_eval_every,
        labelled_pieces_per_class=args.labelled_pieces)
    if len(reports) == 1:
        print(format_table(reports[0]))
        result = reports[0].to_dict()
    else:
        print(format_split_table(reports))
        result = splits_to_dict(reports)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"report written to {args.out}")
    return 0


def _has_sources(data: str) -> bool:
    """Whether the data is a recordings manifest (it has a ``source`` column)."""
    manifest = Path(data) / "manifest.csv" if Path(data).is_dir() else Path(data)
    if manifest.suffix.lower() != ".csv" or not manifest.is_file():
        return False
    with open(manifest, newline="", encoding="utf-8") as handle:
        return "source" in next(csv.reader(handle), [])


def _run_tracks(args: argparse.Namespace, model) -> int:
    """One track-identification task per source; print the side-by-side table and optionally write JSON."""
    from immersions.cpc.data import AudioCorpus
    from immersions.cpc.track_probe import format_track_table, probe_sources, run_track_task

    sample_rate = model.config.sample_rate
    if args.clip_seconds <= 0:
        raise ValueError(f"--clip-seconds {args.clip_seconds} must be positive")
    corpus = AudioCorpus.from_source(args.data, sample_rate, int(round(args.clip_seconds * sample_rate)),
                                     cache_dir=args.cache_dir)
    sources = args.sources or probe_sources(corpus)
    unknown = sorted(set(sources) - set(probe_sources(corpus)))
    if unknown:
        raise ValueError(f"--sources {' '.join(unknown)}: not in {args.data}; its sources: "
                         f"{', '.join(probe_sources(corpus))}")
    taps = model.tap_names() if args.taps == ["all"] else args.taps
    reports = [run_track_task(model, corpus, name=source, source=source, n_tracks=args.tracks, seed=args.seed[0],
                              untrained_seeds=args.untrained_seeds, taps=taps, baseline_steps=args.baseline_steps,
                              baseline_lr=args.baseline_lr, batch_size=args.batch_size,
                              regularization=args.regularization, baseline_eval_every=args.baseline_eval_every)
               for source in sources]
    print(format_track_table(reports))
    if args.out:
        Path(args.out).write_text(json.dumps({"model": args.model, "track_tasks": [r.to_dict() for r in reports]},
                                             indent=2), encoding="utf-8")
        print(f"report written to {args.out}")
    return 0
