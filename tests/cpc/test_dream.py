"""DreamSound's functions: the algebra of each step, and the objective rising over a few steps."""
import numpy as np
import pytest
import torch

from immersions.cpc.dream import DreamSettings, dream, dream_step, filtered, fit_length, hard_cut
from immersions.cpc.objectives import channel
from immersions.cpc.optimize import start_clip
from tests.cpc.test_train import tiny_model

N_FFT = 512
RATE = 8000


def _noise(seed: int, n: int = RATE) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(n)).double()


def _tone(hz: float, n: int = RATE) -> torch.Tensor:
    return torch.sin(2 * np.pi * hz * torch.arange(n, dtype=torch.float64) / RATE)


def test_hard_cut_at_the_extremes_and_between():
    magnitude = torch.tensor([[0.0, 0.25, 0.5, 1.0, 2.0]])
    assert hard_cut(magnitude, 0.0).tolist() == [[0, 1, 1, 1, 1]]     # everything but silence passes
    assert hard_cut(magnitude, 1.0).tolist() == [[0, 0, 0, 0, 0]]     # nothing passes, not even the peak
    assert hard_cut(magnitude, 0.2).tolist() == [[0, 0, 1, 1, 1]]     # 0.25 / 2 = 0.125 is below 0.2
    assert not hard_cut(torch.zeros(3, 4), 0.0).any()


def test_a_filter_of_ones_is_the_identity_and_a_filter_of_zeros_silence():
    clip, broadband = 0.3 * _noise(0), _noise(1)
    torch.testing.assert_close(filtered(clip, broadband, 0.0, N_FFT), clip, atol=1e-9, rtol=0)
    assert not filtered(clip, broadband, 1.0, N_FFT).any()
    settings = DreamSettings(function="filter", threshold=0.0)
    torch.testing.assert_close(dream_step(clip.clamp(-1, 1), broadband, settings, N_FFT), clip.clamp(-1, 1))


def test_the_target_filter_comes_from_the_targets_spectrum():
    """Through a pure tone's filter, a broadband gradient keeps only the tone's frequencies."""
    gradient, target = _noise(2), _tone(1000.0)
    settings = DreamSettings(function="target", step_size=0.05, threshold=0.1)
    clip = torch.zeros(RATE, dtype=torch.float64)
    change = dream_step(clip, gradient, settings, N_FFT, target) - clip
    spectrum = np.abs(np.fft.rfft(change.numpy())) ** 2
    freqs = np.fft.rfftfreq(RATE, 1 / RATE)
    near = np.abs(freqs - 1000.0) < 100
    assert spectrum[near].sum() > 0.95 * spectrum.sum()
    assert change.std().item() == pytest.approx(0.05)           # the filtered gradient over its spread, scaled


def test_deepdream_and_filter_add_steps():
    clip, gradient = 0.1 * _noise(3), _noise(4)
    step = dream_step(clip, gradient, DreamSettings(function="deepdream", step_size=0.02), N_FFT)
    torch.testing.assert_close(step, (clip + 0.02 * gradient / gradient.std()).clamp(-1, 1))
    added = dream_step(clip, gradient, DreamSettings(function="filter-add", step_size=0.5, threshold=0.0), N_FFT)
    torch.testing.assert_close(added, (1.5 * clip).clamp(-1, 1), atol=1e-9, rtol=0)  # filter of ones: clip + 0.5 clip
    assert dream_step(clip, 100 * gradient, DreamSettings(step_size=1.0), N_FFT).abs().max() <= 1.0


def test_fit_length_cuts_or_pads():
    assert fit_length(np.ones(5), 3).tolist() == [1, 1, 1]
    assert fit_length(np.ones(2), 4).tolist() == [1, 1, 0, 0]


@pytest.mark.parametrize("function,step_size", [("deepdream", 0.01), ("target", 0.01)])
def test_the_objective_rises_over_a_few_steps(function, step_size):
    """The functions that add the gradient climb; the filters follow where the gradient has energy, not its sign,
    so they need not (their algebra is tested above)."""
    model = tiny_model().eval()
    clip = start_clip("noise", model.config.sample_rate // 2, seed=0)
    target = start_clip("noise", model.config.sample_rate // 4, seed=1) if function == "target" else None
    settings = DreamSettings(function=function, steps=5, step_size=step_size, threshold=0.05, save_every=2)
    result = dream(model, channel("ar.blocks.1.relu", 1), clip, settings, target=target, progress=False)
    assert len(result.scores) == 6 and result.scores[-1] > result.scores[0]
    assert sorted(result.saved) == [2, 4, 5] and np.array_equal(result.saved[5], result.audio)
    assert result.audio.shape == clip.shape and result.audio.dtype == np.float32


def test_bad_settings_are_errors():
    with pytest.raises(ValueError, match="'blur' is not one of"):
        DreamSettings(function="blur")
    with pytest.raises(ValueError, match="threshold=1.5 must lie in"):
        DreamSettings(threshold=1.5)
    model = tiny_model().eval()
    clip = start_clip("noise", model.config.sample_rate // 2)
    with pytest.raises(ValueError, match="target sound"):
        dream(model, channel("ar.blocks.1.relu", 1), clip, DreamSettings(function="target"), progress=False)
