"""Built-in test music, synthesised in code: the demo needs no download and ships no audio file.

A seeded four-chord progression in a seeded major key: a sustained bass note, a three-note chord pad and an
arpeggiated melody on top. Every note is a sum of harmonics (amplitude ``1 / h**tilt``, slightly stretched
like a string) under an attack-decay-sustain-release envelope, so the clip has onsets, polyphony, harmonic
series and decays: the things an audio network's neurons respond to.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .defaults import DEMO_SECONDS

DEMO_SAMPLE_RATE = 44100
PROGRESSION = (0, 5, 3, 4)  # I - vi - IV - V, as scale degrees
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)


@dataclass(frozen=True)
class Note:
    """One note: start and length in seconds, MIDI pitch, peak amplitude, harmonic count and brightness."""

    start: float
    length: float
    pitch: float
    amplitude: float
    harmonics: int
    tilt: float


def midi_to_hz(pitch: float | np.ndarray) -> np.ndarray:
    """Equal-tempered frequency of a MIDI pitch (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(pitch, dtype=np.float64) - 69.0) / 12.0)


def envelope(n_samples: int, sample_rate: int, *, attack: float = 0.01, decay: float = 0.15,
             sustain: float = 0.5, release: float = 0.2) -> np.ndarray:
    """Linear attack, exponential decay to ``sustain``, exponential release over the last ``release`` s."""
    t = np.arange(n_samples) / sample_rate
    length = n_samples / sample_rate
    rise = np.clip(t / attack, 0.0, 1.0)
    fall = sustain + (1.0 - sustain) * np.exp(-np.maximum(t - attack, 0.0) / decay)
    tail = np.exp(-np.maximum(t - (length - release), 0.0) / (release / 5.0))
    return (rise * fall * tail).astype(np.float32)


def render_note(note: Note, sample_rate: int) -> np.ndarray:
    """Samples of one note (harmonic sum times envelope), without its start offset."""
    n = max(int(round(note.length * sample_rate)), 1)
    t = np.arange(n, dtype=np.float64) / sample_rate
    h = np.arange(1, note.harmonics + 1, dtype=np.float64)
    frequency = midi_to_hz(note.pitch) * h * np.sqrt(1.0 + 1e-4 * h * h)  # slightly stretched partials
    audible = frequency < sample_rate / 2
    weights = (1.0 / h ** note.tilt)[audible]
    wave = np.sin(2.0 * np.pi * np.outer(t, frequency[audible])) @ weights / weights.sum()
    return (note.amplitude * wave).astype(np.float32) * envelope(n, sample_rate)


def demo_notes(seconds: float, seed: int = 0) -> list[Note]:
    """The seeded score: key, voicings and melody pitches vary with ``seed``; one chord per second."""
    rng = np.random.default_rng(seed)
    tonic = 48 + int(rng.integers(0, 12))
    notes: list[Note] = []
    beat = 0.25
    for bar in range(int(np.ceil(seconds))):
        degree = PROGRESSION[bar % len(PROGRESSION)]
        chord = [tonic + 12 * ((degree + step) // 7) + MAJOR_SCALE[(degree + step) % 7] for step in (0, 2, 4)]
        start = float(bar)
        notes.append(Note(start, 1.0, chord[0] - 12, 0.5, 12, 1.2))
        notes.extend(Note(start, 1.0, pitch + 12, 0.18, 8, 1.6) for pitch in chord)
        for step in range(4):
            pitch = chord[int(rng.integers(0, 3))] + 24 + 12 * int(rng.random() < 0.3)
            notes.append(Note(start + step * beat, beat * 1.5, pitch, 0.35, 6, 1.0))
    return [note for note in notes if note.start < seconds]


def demo_clip(seconds: float = DEMO_SECONDS, *, sample_rate: int = DEMO_SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """A mono float32 clip of ``seconds`` of polyphonic music at ``sample_rate``, peak 0.8."""
    if not np.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"seconds must be a positive finite number, got {seconds!r}")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate < 8000:
        raise ValueError(f"sample_rate must be an integer >= 8000 Hz, got {sample_rate!r}")
    total = int(round(seconds * sample_rate))
    clip = np.zeros(total, np.float32)
    for note in demo_notes(seconds, seed):
        start = int(round(note.start * sample_rate))
        samples = render_note(note, sample_rate)[: total - start]
        clip[start:start + len(samples)] += samples
    peak = float(np.abs(clip).max())
    return clip * np.float32(0.8 / peak) if peak > 0 else clip
