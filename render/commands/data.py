"""``immersions data corpus OUT_DIR``: render a labelled audio corpus from the music21 scores."""
from __future__ import annotations

import argparse
from collections import Counter

HELP = "build data sets for training and probing"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its ``corpus`` action."""
    from immersions.cpc.corpus import AUDIO_FORMATS, DEFAULT_COMPOSERS

    parser = subparsers.add_parser("data", help=HELP)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    corpus = actions.add_parser("corpus", help="render music21 scores to audio with FluidSynth + a manifest")
    corpus.add_argument("out_dir", help="folder for the audio files and manifest.csv")
    corpus.add_argument("--composers", nargs="+", default=list(DEFAULT_COMPOSERS),
                        help="music21 corpus composers or collections (default: %(default)s)")
    corpus.add_argument("--max-pieces", type=int, default=20, help="pieces per composer (default: %(default)s)")
    corpus.add_argument("--seed", type=int, default=0, help="seed of piece and ensemble choice")
    corpus.add_argument("--workers", type=int, default=1, help="rendering processes (default: %(default)s)")
    corpus.add_argument("--sample-rate", type=int, default=22050, choices=(22050, 44100))
    corpus.add_argument("--max-seconds", type=float, default=60.0, help="trim every piece to this length")
    corpus.add_argument("--format", dest="audio_format", default="flac", choices=AUDIO_FORMATS)
    corpus.add_argument("--soundfont", default=None, help="General MIDI .sf2 (default: the installed one)")
    corpus.add_argument("--exclude", nargs="+", default=[], metavar="MANIFEST",
                        help="leave out every piece listed in these manifests (e.g. a labelled corpus, "
                             "to draw a disjoint pretraining corpus)")
    corpus.set_defaults(func=run_corpus)


def run_corpus(args: argparse.Namespace) -> int:
    """Render the corpus and print how many pieces each composer and ensemble got."""
    from immersions.cpc.corpus import build_corpus

    entries = build_corpus(args.out_dir, args.composers, args.max_pieces, seed=args.seed,
                           workers=args.workers, sample_rate=args.sample_rate,
                           max_seconds=args.max_seconds, audio_format=args.audio_format,
                           soundfont=args.soundfont, exclude_manifests=args.exclude)
    hours = sum(e.duration for e in entries) / 3600
    print(f"{len(entries)} pieces, {hours:.2f} h of audio in {args.out_dir}")
    for label, counts in (("composer", Counter(e.composer for e in entries)),
                          ("instrument", Counter(e.instrument for e in entries))):
        print(f"  {label}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0
