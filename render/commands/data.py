"""``immersions data corpus|recordings``: render a labelled corpus from music21 scores, or gather recorded
music from folders into a corpus of the same form."""
from __future__ import annotations

import argparse
from collections import Counter

HELP = "build data sets for training and probing"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its ``corpus`` and ``recordings`` actions."""
    from immersions.cpc.corpus import AUDIO_FORMATS, DEFAULT_COMPOSERS
    from immersions.cpc.recordings import RECORDING_SUFFIXES

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
    recordings = actions.add_parser(
        "recordings", help="decode recorded music under folders into a corpus + manifest",
        description="Every " + "/".join(s[1:] for s in RECORDING_SUFFIXES) + " file under the folders, decoded, "
                    "mixed to mono, resampled, loudness-normalised (-23 LUFS) and trimmed of silence, one FLAC "
                    "per track and a manifest.csv (source, track, duration, licence). Re-running resumes.")
    recordings.add_argument("sources", nargs="+", metavar="SRC",
                            help="folder of recordings, or NAME=FOLDER to name the source (default name: the "
                                 "folder's)")
    recordings.add_argument("out_dir", help="folder for the audio files and manifest.csv")
    recordings.add_argument("--sample-rate", type=int, default=44100, help="the model's rate (default: %(default)s)")
    recordings.add_argument("--min-seconds", type=float, default=20.0,
                            help="skip files with less sound than this: effects, jingles (default: %(default)s)")
    recordings.add_argument("--max-seconds", type=float, default=None, help="trim every track to this length")
    recordings.add_argument("--workers", type=int, default=1, help="decoding processes (default: %(default)s)")
    recordings.add_argument("--licence", default=None,
                            help="licence of every track (default: read from DEP-5 copyright files in the folders)")
    recordings.add_argument("--exclude", nargs="+", default=[], metavar="MANIFEST",
                            help="leave out every track listed in these manifests (e.g. an evaluation corpus)")
    recordings.set_defaults(func=run_recordings)


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


def run_recordings(args: argparse.Namespace) -> int:
    """Gather the recordings and print how many tracks and hours each source gave."""
    from immersions.cpc.recordings import build_recordings

    entries = build_recordings(args.sources, args.out_dir, sample_rate=args.sample_rate,
                               min_seconds=args.min_seconds, max_seconds=args.max_seconds, workers=args.workers,
                               licence=args.licence, exclude_manifests=args.exclude)
    print(f"{len(entries)} tracks, {sum(e.duration for e in entries) / 3600:.2f} h of audio in {args.out_dir}")
    for source in sorted({e.source for e in entries}):
        mine = [e for e in entries if e.source == source]
        print(f"  {source}: {len(mine)} tracks, {sum(e.duration for e in mine) / 60:.1f} min")
    return 0
