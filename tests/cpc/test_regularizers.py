"""Regularisers: each does what it says, within its bounds, seeded, and switches off at zero."""
import numpy as np
import pytest
import torch

from immersions.cpc.regularizers import (Regularization, denoise, mask, noisy_gradient, pitch_shift,
                                         time_shift)

FLOOR = -20.0


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_time_shift_is_a_bounded_seeded_roll():
    audio = torch.arange(100, dtype=torch.float32)[None]
    seen = set()
    for seed in range(20):
        shifted = time_shift(audio, 7, _generator(seed))
        shift = int(shifted[0, 0].neg().remainder(100))      # where sample 0 went
        shift = shift - 100 if shift > 50 else shift
        assert abs(shift) <= 7 and torch.equal(shifted, torch.roll(audio, shift, dims=-1))
        seen.add(shift)
    assert len(seen) > 3
    assert torch.equal(time_shift(audio, 7, _generator(3)), time_shift(audio, 7, _generator(3)))
    assert time_shift(audio, 0, _generator()) is audio


def test_pitch_shift_moves_a_partial_and_fills_with_silence():
    scaleogram = torch.full((1, 2, 30, 4), FLOOR)
    scaleogram[:, 1] = 0.0
    scaleogram[:, 0, 12] = 5.0
    scaleogram[:, 1, 12] = 0.5
    moves = set()
    for seed in range(30):
        shifted = pitch_shift(scaleogram, 3, FLOOR, _generator(seed))
        peak = int(shifted[0, 0, :, 0].argmax())
        moves.add(peak - 12)
        expected = torch.full_like(scaleogram, FLOOR)
        expected[:, 1] = 0.0
        expected[:, 0, peak], expected[:, 1, peak] = 5.0, 0.5
        assert torch.equal(shifted, expected)
    assert moves == {-3, -2, -1, 0, 1, 2, 3}
    assert pitch_shift(scaleogram, 0, FLOOR, _generator()) is scaleogram


def test_mask_blanks_bounded_rectangles_only():
    scaleogram = torch.rand(2, 2, 40, 50, generator=_generator(1)) + 1.0
    masked = mask(scaleogram, 2, 6, 5, FLOOR, _generator(2))
    changed = (masked != scaleogram).any(dim=1)                    # (B, F, T)
    assert torch.equal(changed[0], changed[1])                      # the same rectangles for every clip
    assert 0 < int(changed[0].sum()) <= 2 * 6 * 5
    assert torch.all(masked[:, 0][changed] == FLOOR) and torch.all(masked[:, 1][changed] == 0.0)
    assert torch.equal(masked, mask(scaleogram, 2, 6, 5, FLOOR, _generator(2)))
    assert mask(scaleogram, 0, 6, 5, FLOOR, _generator()) is scaleogram


def test_noisy_gradient_adds_noise_in_proportion():
    gradient = 3.0 * torch.randn(200_000, generator=_generator(4))
    noisy = noisy_gradient(gradient, 0.2, _generator(5))
    assert float((noisy - gradient).std()) == pytest.approx(0.2 * float(gradient.std()), rel=0.02)
    assert noisy_gradient(gradient, 0.0, _generator()) is gradient


def test_denoise_removes_noise_and_keeps_a_tone():
    rate = 8000
    t = torch.arange(2 * rate) / rate
    tone = 0.5 * torch.sin(2 * np.pi * 440 * t)[None]
    noisy = tone + 0.05 * torch.randn(tone.shape, generator=_generator(6))
    cleaned = denoise(noisy, 1.0)
    error_before = float(((noisy - tone) ** 2).mean())
    error_after = float(((cleaned - tone) ** 2).mean())
    assert error_after < 0.3 * error_before
    assert float(torch.nn.functional.cosine_similarity(denoise(tone, 1.0), tone)) > 0.99
    assert denoise(noisy, 0.0) is noisy


def test_regularization_rejects_negative_strengths():
    with pytest.raises(ValueError, match="gradient_noise=-0.1"):
        Regularization(gradient_noise=-0.1)
    off = Regularization.off()
    assert off.time_shift == off.masks == off.denoise_every == 0
