"""``immersions probe MODEL DATA``: linear probes of a CPC model's contexts against chance and a baseline."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from immersions.cpc.settings import PROBE_REGULARIZATION

HELP = "linear probes (composer, instrument, ...) of a CPC model"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``probe`` command."""
    parser = subparsers.add_parser("probe", help=HELP)
    parser.add_argument("model", help="checkpoint .pt, or the name of a shipped model (e.g. lean)")
    parser.add_argument("data", help="manifest .csv/.json, or a corpus folder holding manifest.csv")
    parser.add_argument("--tasks", nargs="+", default=["composer", "instrument"],
                        help="manifest columns to classify (default: %(default)s)")
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
    corpus = AudioCorpus.from_source(args.data, model.config.sample_rate, model.clip_samples(args.n_context),
                                     cache_dir=args.cache_dir)
    reports = run_probe_splits(
        model, corpus, args.tasks, seeds=args.seed, clips_per_file=args.clips_per_file,
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
