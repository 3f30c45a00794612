"""Render a labelled audio corpus from the scores shipped with music21, through FluidSynth.

The corpus gives CPC training and the composer/instrument probes real, varied music that no one here
wrote: every piece is played by a seeded choice of General MIDI ensemble, so timbre and composer vary
independently. music21 ships its corpus inside the wheel; nothing is downloaded.
"""
from __future__ import annotations

import csv
import logging
import random
import shutil
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

import numpy as np
import soundfile as sf
from tqdm import tqdm


logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

DEFAULT_COMPOSERS = ("bach", "palestrina", "monteverdi", "trecento", "ryansMammoth", "oneills1850")
SOUNDFONT_CANDIDATES = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
# General MIDI programs (0-based) per ensemble; parts cycle through the list.
ENSEMBLES: dict[str, tuple[int, ...]] = {
    "piano": (0,),
    "harpsichord": (6,),
    "organ": (19,),
    "strings": (40, 41, 42, 43),
    "choir": (52,),
    "flute": (73, 72, 73, 70),
    "brass": (56, 60, 57, 58),
    "guitar": (24, 25),
}
AUDIO_FORMATS = ("flac", "ogg")
# Harmonic analyses (roman numerals) sit beside some scores in the corpus under the same names: not music.
ANALYSIS_SUFFIXES = (".rntxt",)
MANIFEST_NAME = "manifest.csv"
INSTALL_HINT = ("install them with `apt-get install -y fluidsynth fluid-soundfont-gm` "
                "and `pip install -e '.[corpus]'` in the immersions clone (music21)")


@dataclass(frozen=True)
class CorpusEntry:
    """One rendered piece: a row of the manifest (path relative to the manifest's folder)."""

    path: str
    composer: str
    piece: str
    instrument: str
    duration: float
    sample_rate: int
    source: str


@dataclass(frozen=True)
class RenderJob:
    """Everything a worker process needs to render one piece."""

    source: str
    composer: str
    piece: str
    instrument: str
    out_path: str
    soundfont: str
    sample_rate: int
    max_seconds: float
    seed: int


def find_soundfont(soundfont: str | None = None) -> str:
    """The General MIDI soundfont to use: the given path, or the first installed candidate."""
    if soundfont is not None:
        if not Path(soundfont).is_file():
            raise FileNotFoundError(f"soundfont={soundfont!r} does not exist")
        return soundfont
    for candidate in SOUNDFONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    raise RuntimeError(f"no General MIDI soundfont found (looked for {', '.join(SOUNDFONT_CANDIDATES)}); "
                       + INSTALL_HINT)


def check_tools() -> None:
    """Raise a RuntimeError that says how to install FluidSynth or music21 when one is missing."""
    if shutil.which("fluidsynth") is None:
        raise RuntimeError("the `fluidsynth` program is not installed; " + INSTALL_HINT)
    try:
        import music21  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("the Python package music21 is not installed; " + INSTALL_HINT) from exc


def list_sources(composer: str) -> list[str]:
    """Score files of one music21 corpus composer or collection: sorted, one per piece name, no analyses."""
    from music21 import corpus

    by_stem: dict[str, str] = {}
    for path in sorted(corpus.getComposer(composer)):
        if path.suffix.lower() not in ANALYSIS_SUFFIXES:
            by_stem.setdefault(path.stem, str(path))  # one encoding per piece
    paths = sorted(by_stem.values())
    if not paths:
        raise ValueError(f"composer={composer!r} has no scores in the music21 corpus; "
                         f"try one of {', '.join(DEFAULT_COMPOSERS)}")
    return paths


def piece_name(composer: str, source: str) -> str:
    """A piece's manifest name, ``composer/stem``: the identity ``--exclude`` matches on."""
    return f"{composer}/{Path(source).stem}"


def plan_jobs(out_dir: Path, composers: Sequence[str], max_pieces: int, soundfont: str,
              sample_rate: int, max_seconds: float, audio_format: str, seed: int,
              exclude_pieces: frozenset[str] = frozenset()) -> list[RenderJob]:
    """Pick up to ``max_pieces`` scores per composer and an ensemble per piece, all seeded.

    Pieces named in ``exclude_pieces`` (``composer/stem``, as in a manifest) are never picked, so a
    pretraining corpus can be drawn disjoint from a labelled one.
    """
    if audio_format not in AUDIO_FORMATS:
        raise ValueError(f"audio_format={audio_format!r} is not one of {AUDIO_FORMATS}")
    if max_pieces < 1:
        raise ValueError(f"max_pieces={max_pieces} must be at least 1")
    rng = random.Random(seed)
    ensembles = sorted(ENSEMBLES)
    jobs = []
    for composer in composers:
        sources = [source for source in list_sources(composer)
                   if piece_name(composer, source) not in exclude_pieces]
        rng.shuffle(sources)
        for source in sorted(sources[:max_pieces]):
            piece = piece_name(composer, source)
            instrument = rng.choice(ensembles)
            name = f"{Path(source).stem}_{instrument}.{audio_format}".replace(" ", "_")
            jobs.append(RenderJob(source=source, composer=composer, piece=piece, instrument=instrument,
                                  out_path=str(out_dir / composer / name), soundfont=soundfont,
                                  sample_rate=sample_rate, max_seconds=max_seconds,
                                  seed=rng.randrange(2**31)))
    return jobs


def _load_score(source: str, seed: int):
    """Parse a score; from a collection (an Opus of many tunes) take one tune, chosen by seed."""
    from music21 import converter, stream

    parsed = converter.parse(source)
    if isinstance(parsed, stream.Opus):
        scores = list(parsed.scores)
        if not scores:
            raise ValueError(f"{source} holds no scores")
        parsed = scores[random.Random(seed).randrange(len(scores))]
    return parsed


def _assign_programs(score, programs: tuple[int, ...]) -> None:
    """Replace every part's instrument by a General MIDI program of the ensemble."""
    from music21 import instrument

    parts = list(score.parts) or [score]
    for index, part in enumerate(parts):
        for old in list(part.recurse().getElementsByClass(instrument.Instrument)):
            old.activeSite.remove(old)
        new = instrument.Instrument()
        new.midiProgram = programs[index % len(programs)]
        part.insert(0, new)


def _synthesize(midi_path: Path, soundfont: str, sample_rate: int, max_seconds: float) -> np.ndarray:
    """Render a MIDI file with FluidSynth (no audio driver, no shell) to float32 stereo ``(samples, 2)``.

    FluidSynth streams raw 16-bit audio to a pipe and is stopped after ``max_seconds``: a score with an
    absurd tempo mark or a hanging note can otherwise render for hours.
    """
    command = ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(sample_rate), "-T", "raw", "-O", "s16",
               "-E", "little", "-F", "-", soundfont, str(midi_path)]
    wanted = int(max_seconds * sample_rate) * 4  # 2 channels x 2 bytes
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        raw = process.stdout.read(wanted)
        finished = process.poll() is not None
        process.kill()
        error = process.stderr.read().decode(errors="replace").strip()
        process.wait()
    if not raw and finished:
        raise RuntimeError(f"fluidsynth rendered nothing from {midi_path}: {error[-300:]}")
    samples = np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<i2").reshape(-1, 2)
    return samples.astype(np.float32) / 32768.0


def render_piece(job: RenderJob) -> CorpusEntry:
    """Parse, orchestrate, synthesize, mix to mono, trim, peak-normalise and write one piece."""
    out_path = Path(job.out_path)
    if out_path.is_file():  # an earlier, interrupted build already rendered it
        info = sf.info(str(out_path))
        return CorpusEntry(path="", composer=job.composer, piece=job.piece, instrument=job.instrument,
                           duration=round(info.frames / info.samplerate, 3), sample_rate=info.samplerate,
                           source=job.source)
    score = _load_score(job.source, job.seed)
    _assign_programs(score, ENSEMBLES[job.instrument])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="immersions-corpus-") as tmp:
        midi_path = Path(tmp) / "piece.mid"
        score.write("midi", fp=str(midi_path))
        audio = _synthesize(midi_path, job.soundfont, job.sample_rate, job.max_seconds).mean(axis=1)
    rate = job.sample_rate
    nonzero = np.flatnonzero(np.abs(audio) > 1e-4)
    if nonzero.size == 0:
        raise ValueError(f"{job.source} rendered to silence")
    audio = audio[nonzero[0]: nonzero[-1] + 1]
    audio = (0.9 / np.abs(audio).max()) * audio
    partial = out_path.with_name(out_path.stem + ".partial" + out_path.suffix)
    sf.write(str(partial), audio, rate, format=out_path.suffix[1:].upper())
    partial.replace(out_path)
    return CorpusEntry(path="", composer=job.composer, piece=job.piece, instrument=job.instrument,
                       duration=round(len(audio) / rate, 3), sample_rate=rate, source=job.source)


def _render_or_none(job: RenderJob) -> tuple[RenderJob, CorpusEntry | None, str]:
    """Worker wrapper: a failing piece is reported, not fatal."""
    try:
        return job, render_piece(job), ""
    except Exception as exc:  # noqa: BLE001 - any parser/synth failure skips only this piece
        return job, None, f"{type(exc).__name__}: {exc}"


def parallel_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[R]:
    """``fn`` over ``items`` in worker processes (inline for one worker), yielding results in order."""
    if workers == 1:
        yield from map(fn, items)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(fn, items)


def write_manifest(entries: Sequence[CorpusEntry], path: Path) -> None:
    """Write the manifest CSV (one row per piece, columns = CorpusEntry fields)."""
    names = [f.name for f in fields(CorpusEntry)]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        for entry in entries:
            writer.writerow(asdict(entry))


def build_corpus(out_dir: str | Path, composers: Sequence[str] = DEFAULT_COMPOSERS, max_pieces: int = 20,
                 *, seed: int = 0, workers: int = 1, sample_rate: int = 22050, max_seconds: float = 60.0,
                 audio_format: str = "flac", soundfont: str | None = None,
                 exclude_manifests: Sequence[str | Path] = ()) -> list[CorpusEntry]:
    """Render up to ``max_pieces`` scores per composer into ``out_dir`` and write ``manifest.csv``.

    Pieces listed in any of ``exclude_manifests`` are left out (e.g. a labelled corpus, when building the
    unlabelled pretraining corpus beside it). Files already in ``out_dir`` from an interrupted build with
    the same settings are kept, not re-rendered.
    """
    check_tools()
    if workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    if sample_rate not in (22050, 44100):
        raise ValueError(f"sample_rate={sample_rate} is not one of (22050, 44100)")
    from .data import read_manifest  # here: it brings torch, which the command line's help does without

    exclude_pieces = frozenset(entry.piece for manifest in exclude_manifests
                               for entry in read_manifest(manifest))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = plan_jobs(out_dir, composers, max_pieces, find_soundfont(soundfont), sample_rate,
                     max_seconds, audio_format, seed, exclude_pieces)
    entries = []
    rendered = parallel_map(_render_or_none, jobs, workers)
    for job, entry, error in tqdm(rendered, total=len(jobs), desc="rendering", unit="piece"):
        if entry is None:
            logger.warning("skipped %s: %s", job.source, error)
            continue
        relative = Path(job.out_path).relative_to(out_dir).as_posix()
        entries.append(CorpusEntry(**{**asdict(entry), "path": relative}))
    if not entries:
        raise RuntimeError(f"no piece could be rendered into {out_dir}")
    write_manifest(entries, out_dir / MANIFEST_NAME)
    logger.info("rendered %d of %d pieces into %s", len(entries), len(jobs), out_dir)
    return entries
