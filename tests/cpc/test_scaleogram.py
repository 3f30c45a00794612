"""Scaleogram front end: librosa agreement, tone placement, phase advance, shapes, causality, gradients."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from immersions.cpc.config import CONFIGS
from immersions.cpc.scaleogram import Scaleogram, as_batch_audio, band_frequencies, filter_lengths

SR = 44100
SEED = CONFIGS["seed"]


def _tone(frequency: float, seconds: float = 1.0, amplitude: float = 0.5) -> torch.Tensor:
    t = np.arange(int(seconds * SR)) / SR
    return torch.tensor(amplitude * np.sin(2 * np.pi * frequency * t), dtype=torch.float32)


def _music_like(seed: int, samples: int) -> np.ndarray:
    """Polyphonic test signal: a harmonic drone plus notes with harmonics and decaying envelopes."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / SR
    seconds = samples / SR
    y = np.zeros_like(t)
    for f in (55.0, 110 * 2 ** (7 / 12)):
        for h in range(1, 6):
            y += 0.3 / h * np.sin(2 * np.pi * f * h * t)
    for _ in range(16):
        f = 40 * 2 ** (rng.integers(24, 160) / 24)
        onset, decay = rng.uniform(0, seconds - 0.4), rng.uniform(0.2, 1.0)
        envelope = np.clip((t - onset) / 0.005, 0, 1) * np.exp(-np.clip(t - onset, 0, None) / decay)
        for h in range(1, 10):
            if f * h < 18000:
                y += envelope * rng.uniform(0.2, 1) / h * np.sin(2 * np.pi * f * h * t + rng.uniform(0, 6))
    return 0.5 * y / np.abs(y).max()


def _limited(log_power: np.ndarray, top_db: float) -> np.ndarray:
    """Clip each frame to ``top_db`` below its peak (natural-log power units)."""
    return np.maximum(log_power, log_power.max(axis=0, keepdims=True) - top_db * np.log(10) / 10)


@pytest.mark.parametrize("signal, top_db", [("chirp", 40.0), ("music0", 80.0), ("music1", 80.0)])
def test_log_magnitudes_match_librosa_per_frame(signal, top_db):
    librosa = pytest.importorskip("librosa")
    config = replace(SEED, causal=False)
    samples = 172 * config.hop  # ~4 s; whole hops, as trailing samples are ignored
    if signal == "chirp":
        y = 0.5 * librosa.chirp(fmin=50, fmax=16000, sr=SR, length=samples)
    else:
        y = _music_like(int(signal[-1]), samples)
    ours = Scaleogram(config)(torch.tensor(y, dtype=torch.float32))[0, 0].numpy().astype(np.float64)
    # librosa's unscaled CQT reads A/2 * L_b for a tone; ours is L1-normalised and reads A/2.
    reference = np.abs(librosa.cqt(y, sr=SR, hop_length=config.hop, fmin=config.fmin, n_bins=config.n_bins,
                                   bins_per_octave=config.bins_per_octave, scale=False, sparsity=0.0))
    reference = reference / filter_lengths(config)[:, None]
    # Our frame t is centred at (t + 1) * hop, librosa's frame t + 1.
    reference = np.log(reference[:, 1:1 + ours.shape[1]] ** 2 + config.power_floor)
    a, b = _limited(ours, top_db), _limited(reference, top_db)
    inner = range(2, ours.shape[1] - 2)
    per_frame = np.array([np.corrcoef(a[:, i], b[:, i])[0, 1] for i in inner])
    assert per_frame.min() >= 0.99
    full = np.corrcoef(ours[:, 2:-2].ravel(), reference[:, 2:-2].ravel())[0, 1]
    assert full >= 0.99


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("band", [30, 83, 150, 200])
def test_pure_tone_peaks_in_its_band_with_half_amplitude(causal, band):
    config = replace(SEED, causal=causal)
    frequency = float(band_frequencies(config)[band])
    out = Scaleogram(config)(_tone(frequency, seconds=2.0, amplitude=0.5))
    frame = out[0, 0, :, out.shape[-1] // 2 + 5]
    assert int(frame.argmax()) == band
    assert torch.exp(frame.max() / 2).item() == pytest.approx(0.25, rel=0.02)


def test_phase_advance_is_frequency_offset_from_band_centre():
    config = SEED
    band = 120
    offset_hz = 3.0
    frequency = float(band_frequencies(config)[band]) + offset_hz
    phase = Scaleogram(config)(_tone(frequency, seconds=2.0))[0, 1, band, 40:60]
    expected = 2 * offset_hz * config.hop / config.sample_rate  # (2 pi df hop / sr) / pi
    assert torch.allclose(phase, torch.full_like(phase, expected), atol=0.01)
    assert phase.abs().max() <= 1.0


def test_output_shape_and_frame_count():
    module = Scaleogram(SEED)
    samples = 4 * SR
    out = module(torch.zeros(3, samples))
    assert out.shape == (3, 2, 216, samples // SEED.hop) == (3, 2, 216, 172)
    assert out.dtype == torch.float32


def test_input_shapes_are_normalised():
    audio = torch.randn(2, 5000, generator=torch.Generator().manual_seed(0))
    assert as_batch_audio(audio[0]).shape == (1, 1, 5000)
    assert as_batch_audio(audio).shape == (2, 1, 5000)
    assert as_batch_audio(audio[:, None]).shape == (2, 1, 5000)
    module = Scaleogram(replace(SEED, n_bins=24, fmin=1000.0))
    assert torch.allclose(module(audio)[1:], module(audio[1]), atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        as_batch_audio(torch.zeros(2, 2, 100))
    with pytest.raises(ValueError, match="one hop"):
        module(torch.zeros(SEED.hop - 1))
    with pytest.raises(TypeError, match="dtype"):
        as_batch_audio(torch.zeros(100, dtype=torch.int16))
    with pytest.raises(TypeError, match="Tensor"):
        as_batch_audio(np.zeros(100))


@pytest.mark.parametrize("causal", [True, False])
def test_octave_kernels_are_not_padded_to_the_longest(causal):
    module = Scaleogram(replace(SEED, causal=causal))
    sizes = module.kernel_sizes
    assert len(sizes) == 9
    hop = SEED.hop
    for octave, size in enumerate(sizes):
        longest = round(filter_lengths(SEED)[octave * SEED.bins_per_octave])  # lowest band of the octave
        assert size % hop == 0 and longest <= size < longest + 2 * hop
    assert sizes[-1] * 16 < sizes[0]
    assert "(48, 1024, 38)" in repr(module)


def test_causal_front_end_ignores_samples_after_each_frame():
    config = replace(SEED, n_bins=96, fmin=320.0)
    module = Scaleogram(config)
    generator = torch.Generator().manual_seed(1)
    audio = torch.randn(20 * config.hop, generator=generator)
    cut = 11 * config.hop + 17
    changed = audio.clone()
    changed[cut:] = torch.randn(len(audio) - cut, generator=generator)
    a, b = module(audio), module(changed)
    first_affected = cut // config.hop  # frame t sees samples < (t + 1) * hop
    assert torch.equal(a[..., :first_affected], b[..., :first_affected])
    assert not torch.equal(a[..., first_affected], b[..., first_affected])


def test_gradient_reaches_the_waveform_and_is_finite_from_silence():
    module = Scaleogram(replace(SEED, n_bins=120, fmin=160.0))
    noise = 0.1 * torch.randn(8 * SEED.hop, generator=torch.Generator().manual_seed(2))
    for start in (torch.zeros(8 * SEED.hop), noise):
        audio = start.clone().requires_grad_(True)
        out = module(audio)
        (out[0, 0].mean() + out[0, 1].mean()).backward()
        assert torch.isfinite(audio.grad).all()
        if start.abs().sum() > 0:
            assert audio.grad.abs().sum() > 0


def test_trainable_kernels_are_parameters_and_fixed_ones_stay_out_of_the_state_dict():
    small = replace(SEED, n_bins=48, fmin=2000.0)
    fixed = Scaleogram(small)
    assert not list(fixed.parameters())
    assert not fixed.state_dict()
    trainable = Scaleogram(replace(small, trainable_kernels=True))
    assert len(list(trainable.parameters())) == 2
    trainable(torch.randn(4 * SEED.hop)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable.parameters())
