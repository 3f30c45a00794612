"""``immersions gallery OUT_DIR``: the article's per-layer gallery, every tap's clip grown from silence."""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from immersions.cpc.settings import (AURALISE_METHODS, MIN_GAIN, MIN_KEPT_UNDER_SHIFT, GallerySettings,
                                     OptimizeSettings, Regularization)

from ._options import add_model_options

if TYPE_CHECKING:
    from immersions.cpc.model import CPC

HELP = "for every layer, the clip grown from silence that excites it, on one page"
DEFAULTS = GallerySettings()


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``gallery`` command."""
    parser = subparsers.add_parser(
        "gallery", help=HELP,
        description="The article's per-layer gallery: for every tap in network order, grow the clip that maximises "
                    "its mean activation from silence, and write it (clip.wav), its scaleogram (scaleogram.png) and "
                    "its scores on silence, on the clip and under time shifts; given --clip, also that clip heard "
                    "through the tap (auralised.wav, .png). OUT_DIR/index.html shows them all without network "
                    "access; OUT_DIR/gallery.json holds the numbers. Run it again to resume: finished taps are kept.")
    parser.add_argument("out_dir", type=Path, help="output folder")
    parser.add_argument("--clip", type=Path, default=None, help="a sound file to auralise through every tap")
    parser.add_argument("--taps", nargs="+", metavar="TAP", default=None,
                        help="only these taps (default: all, in network order)")
    parser.add_argument("--seconds", type=float, default=DEFAULTS.seconds, help="clip length (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=DEFAULTS.optimize.steps,
                        help="optimisation steps per tap (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=DEFAULTS.optimize.lr,
                        help="Adam step on the samples (default: %(default)s)")
    parser.add_argument("--time-shift", type=float, default=DEFAULTS.optimize.regularization.time_shift,
                        help="largest random roll of the waveform per step while growing, seconds "
                             "(default: %(default)s); the other regularisers keep optimize's defaults")
    parser.add_argument("--shift-seconds", type=float, default=DEFAULTS.shift_seconds,
                        help="the shifts each clip is scored under, seconds either way (default: %(default)s)")
    parser.add_argument("--method", choices=AURALISE_METHODS, default="deconv",
                        help="with --clip: how the auralisation carries the response back (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    add_model_options(parser)
    parser.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> GallerySettings:
    regularization = Regularization(time_shift=args.time_shift)
    return GallerySettings(seconds=args.seconds, shift_seconds=args.shift_seconds,
                           optimize=OptimizeSettings(steps=args.steps, lr=args.lr, regularization=regularization,
                                                     seed=args.seed))


def _taps(model: CPC, chosen: list[str] | None) -> list[tuple[int, str]]:
    """The chosen taps with their places in network order (all of them by default)."""
    taps = model.tap_names()
    unknown = sorted(set(chosen or ()) - set(taps))
    if unknown:
        raise ValueError(f"unknown taps {unknown} in --taps; this model's taps are {taps}")
    return [(index, tap) for index, tap in enumerate(taps) if chosen is None or tap in chosen]


def run(args: argparse.Namespace) -> int:
    """Portray every chosen tap not yet done, writing each as it is finished, then the json and the page."""
    from tqdm import tqdm

    from immersions.cpc.auralise import auralise
    from immersions.cpc.gallery import portrait
    from immersions.cpc.objectives import layer

    from ..app_inputs import read_clip, resample
    from ..atomic import write_wav
    from ..gallery_page import GalleryFolder, tap_folder_name
    from ..hearing import write_auralisation, write_scaleogram
    from ._model import model_from

    settings = _settings(args)
    model = model_from(args)
    taps = _taps(model, args.taps)
    rate = model.config.sample_rate
    given = None if args.clip is None else read_clip(args.clip, seconds=settings.seconds)
    heard_clip = None if given is None else resample(*given, rate)
    folder = GalleryFolder(args.out_dir, {"model": args.model, "clip": None if args.clip is None else str(args.clip),
                                          "method": args.method, **asdict(settings)})
    todo = [(index, tap) for index, tap in taps if not folder.is_done(index, tap)]
    title = f"What each layer of the {Path(args.model).stem} model hears"
    summary = {"sample_rate": rate, "aim": {"min_gain": MIN_GAIN, "min_kept_under_shift": MIN_KEPT_UNDER_SHIFT},
               "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    if len(todo) < len(taps):
        print(f"resuming {args.out_dir}: {len(taps) - len(todo)} of {len(taps)} taps are done")
    for index, tap in tqdm(todo, desc="gallery", unit="tap"):
        started = time.perf_counter()
        result = portrait(model, tap, settings)
        path = folder.tap_path(index, tap)
        write_wav(path / "clip.wav", result.audio, rate)
        write_scaleogram(path / "scaleogram.png", model, result.audio)
        record = {"tap": tap, "title": result.title, "folder": tap_folder_name(index, tap),
                  "files": {"audio": "clip.wav", "figure": "scaleogram.png"},
                  "silence_score": result.silence_score, "score": result.score,
                  "shifted_scores": result.shifted_scores, "gain": result.gain,
                  "kept_under_shift": result.kept_under_shift, "meets_aim": result.meets_aim,
                  "step_scores": result.step_scores}
        if given is not None:
            original, original_rate = given
            heard = auralise(model, layer(tap), heard_clip, args.method, original=original,
                             original_rate=original_rate)
            record["auralised"] = {"score": heard.score, "mask_mean": float(heard.mask.mean()),
                                   "files": write_auralisation(path, "auralised", model, heard_clip, heard,
                                                               original_rate)}
        record["seconds"] = time.perf_counter() - started
        folder.finish_tap(index, tap, record)
        folder.write_summary(summary, title)
    gallery, page = folder.write_summary({**summary, "load_average_at_end": os.getloadavg()}, title)
    records = folder.records()
    met = sum(record["meets_aim"] for record in records)
    print(f"wrote {page} and {gallery}: {len(records)} taps, {met} meet the aim "
          f"({MIN_GAIN:g}x over silence, {MIN_KEPT_UNDER_SHIFT:g} of it kept under +-{settings.shift_seconds:g} s)")
    return 0
