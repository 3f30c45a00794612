"""``immersions map MODEL DATA OUT_DIR``: where the model puts labelled clips, seen, classified and heard."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from immersions.cpc.settings import CLASSIFIERS, FEATURE_KINDS, PROJECTIONS, OptimizeSettings, Regularization

from ..defaults import MOVE_LR
from ._options import add_field_options, field_values
from .optimize import REGULARIZER_HELP

HELP = "latent map of a labelled corpus: projections, an interactive page, classifiers, moves"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``map`` command."""
    parser = subparsers.add_parser(
        "map", help=HELP,
        description="Mean-pooled features of every clip of a labelled corpus, projected to 2-D (a PNG each and one "
                    "self-contained page: hover names a clip, click plays it), classified by a linear probe, an SVM "
                    "and an MLP on held-out pieces, and optionally moved between classes and made audible.")
    parser.add_argument("model", help="checkpoint .pt, or the name of a shipped model (e.g. lean)")
    parser.add_argument("data", help="manifest .csv/.json, or a corpus folder holding manifest.csv")
    parser.add_argument("out_dir", help="output folder (map.html, PNGs, JSON, clips)")
    parser.add_argument("--label", default="composer",
                        help="manifest column to colour and classify by: composer, instrument, source, track, ... "
                             "(default: %(default)s)")
    parser.add_argument("--method", nargs="+", default=["pca", "tsne"], choices=PROJECTIONS,
                        help="projections (umap needs umap-learn) (default: %(default)s)")
    parser.add_argument("--features", nargs="+", default=["c"], choices=FEATURE_KINDS,
                        help="mean-pooled contexts c and/or encodings z (default: %(default)s)")
    parser.add_argument("--clips-per-file", type=int, default=8, help="evenly spaced clips per file (default: 8)")
    parser.add_argument("--group-by", default="piece",
                        help="manifest column whose values a split keeps whole, e.g. piece or track "
                             "(default: %(default)s)")
    parser.add_argument("--classifiers", nargs="*", default=list(CLASSIFIERS), choices=CLASSIFIERS,
                        help="classifiers on held-out pieces; none: skip (default: %(default)s)")
    parser.add_argument("--test-fraction", type=float, default=0.25, help="fraction of pieces held out (default: 0.25)")
    parser.add_argument("--move", nargs=2, action="append", default=[], metavar=("FROM", "TO"),
                        help="move a held-out clip of class FROM to class TO in c and make it audible; repeatable")
    parser.add_argument("--move-steps", type=int, default=OptimizeSettings.steps,
                        help="optimisation steps of each move (default: %(default)s)")
    parser.add_argument("--move-lr", type=float, default=MOVE_LR,
                        help="Adam step on the samples of each move; smaller than optimize's, since a move starts "
                             "from music it should keep (default: %(default)s)")
    map_moves = parser.add_argument_group("regularisers of the moves' feature inversion")
    add_field_options(map_moves, Regularization, REGULARIZER_HELP)
    parser.add_argument("--n-context", type=int, default=6, help="contexts per clip (sets the clip length)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="split, projections and moves (default: 0)")
    parser.add_argument("--cache-dir", default=None, help="folder for decoded .npy audio")
    parser.add_argument("--device", default=None,
                        help="torch device, cpu or cuda[:N] (default: cuda when there is one, else cpu)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch and t-SNE (default: torch's choice; t-SNE 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the map and print where it went."""
    from immersions.cpc.data import AudioCorpus
    from immersions.cpc.train import set_cpu_threads

    from ..app_inputs import check_device, load_cpc_model
    from ..map_app import MapSettings, make_map, movement_summary

    set_cpu_threads(args.threads)
    logging.getLogger("openTSNE").setLevel(logging.WARNING)  # it logs its choice of method at every fit
    settings = MapSettings(label=args.label, methods=tuple(args.method), kinds=tuple(args.features),
                           clips_per_file=args.clips_per_file, group_by=args.group_by,
                           classifiers=tuple(args.classifiers), test_fraction=args.test_fraction,
                           moves=tuple(tuple(pair) for pair in args.move),
                           move=OptimizeSettings(steps=args.move_steps, lr=args.move_lr, seed=args.seed,
                                                 regularization=Regularization(**field_values(Regularization, args))),
                           batch_size=args.batch_size, seed=args.seed, n_jobs=args.threads or 1)
    model = load_cpc_model(args.model).to(check_device(args.device))
    corpus = AudioCorpus.from_source(args.data, model.config.sample_rate, model.clip_samples(args.n_context),
                                     cache_dir=args.cache_dir)
    report = make_map(model, corpus, args.out_dir, settings,
                      title=f"{Path(str(args.model)).stem}: {Path(args.data).name} by {args.label}")
    for kind, scores in report.get("classification", {}).items():
        print(f"{args.label} from mean-pooled {kind} on held-out pieces: " + ", ".join(
            f"{name} {100 * values['accuracy']:.1f} %" for name, values in scores.items()))
    for line in movement_summary(report.get("moves", [])):
        print(line)
    print(f"wrote {report['clips']} clips' map to {Path(args.out_dir) / 'map.html'} "
          f"({', '.join(f'{k} {v:.1f} s' for k, v in report['seconds'].items())})")
    return 0
