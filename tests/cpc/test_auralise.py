"""Auralisation on a network with a known answer: one neuron hears one frequency band and nothing else."""
import numpy as np
import pytest
import torch

from immersions.cpc.auralise import METHODS, auralise, mask_from_relevance, relevance_map
from immersions.cpc.objectives import neuron
from immersions.cpc.scaleogram import band_frequencies
from immersions.cpc.spectral import apply_mask, fft_size, scaleogram_to_stft
from tests.cpc.test_train import tiny_model

TAP = "encoder.blocks.0.relu1"
BAND_A, BAND_B = 4, 18       # scaleogram bands of the two tones
POSITION = 1                 # the neuron's frequency position: conv rows 2, 3 after pooling, bands 2..5


def band_model():
    """The tiny model whose first convolution's channel 0 averages the log power of a 3x3 patch and fires where
    it is above -10 (a loud band); every other channel of that convolution is silent."""
    model = tiny_model().eval()
    with torch.no_grad():
        conv = model.encoder.blocks[0].conv1
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0] = 1.0 / 9.0
        conv.bias[0] = 10.0
    return model


def _tone(model, hz: float, seconds: float = 1.0, amplitude: float = 0.3) -> np.ndarray:
    rate = model.config.sample_rate
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def _amplitude_at(clip: np.ndarray, hz: float, rate: int) -> float:
    """The amplitude of the sinusoid at ``hz`` in the middle half of the clip (its projection)."""
    middle = clip[len(clip) // 4: 3 * len(clip) // 4].astype(np.float64)
    t = np.arange(len(middle)) / rate
    return float(2 * np.abs(np.mean(middle * np.exp(-2j * np.pi * hz * t))))


@pytest.mark.parametrize("method", METHODS)
def test_auralising_keeps_the_band_the_neuron_hears_and_removes_the_other(method):
    model = band_model()
    bands = band_frequencies(model.config)
    low, high = _tone(model, bands[BAND_A]), _tone(model, bands[BAND_B])
    result = auralise(model, neuron(TAP, 0, POSITION), low + high, method)
    rate = model.config.sample_rate
    assert result.audio.shape == low.shape and result.audio.dtype == np.float32 and result.score > 0
    assert _amplitude_at(result.audio, bands[BAND_A], rate) > 0.5 * 0.3
    assert _amplitude_at(result.audio, bands[BAND_B], rate) < 0.01 * 0.3
    assert result.mask.max() == pytest.approx(1.0) and result.mask.min() >= 0
    assert result.mask[BAND_B].max() == 0 and result.mask[2:6].max() == 1      # only bands 2..5 pass
    assert all(not module._forward_hooks and not module._backward_hooks for module in model.modules())
    assert not model.training and all(p.requires_grad for p in model.parameters())


def test_the_three_rules_differ_where_they_should():
    """Deconvolution ignores where the ReLU was off, guided backpropagation does not: on a clip with only the
    other band, the neuron is silent (but for the first frames, where the causal zero padding reads as a loud
    log power); deconv still projects its filter there, guided and gradient x input find nothing."""
    model = band_model()
    clip = _tone(model, band_frequencies(model.config)[BAND_B])
    settled = slice(4, None)
    deconv, score = relevance_map(model, neuron(TAP, 0, POSITION), clip, "deconv")
    _, loud_score = relevance_map(model, neuron(TAP, 0, POSITION), _tone(model, band_frequencies(model.config)[BAND_A]))
    assert score < 0.01 * loud_score and deconv[:, settled].max() > 0
    for method in ("guided", "gradxinput"):
        assert relevance_map(model, neuron(TAP, 0, POSITION), clip, method)[0][:, settled].max() == 0
    with pytest.raises(ValueError, match="'lrp' is not one of"):
        relevance_map(model, neuron(TAP, 0, POSITION), clip, "lrp")


def test_a_mask_of_ones_gives_the_clip_back_at_any_rate():
    model = band_model()
    rng = np.random.default_rng(0)
    for rate in (model.config.sample_rate, 11025):
        clip = (0.3 * rng.standard_normal(rate)).astype(np.float32)
        ones = np.ones((model.config.n_bins, 40), dtype=np.float32)
        result, on_grid = apply_mask(model.config, clip, rate, ones)
        assert on_grid.shape[0] == fft_size(rate) // 2 + 1 and np.all(on_grid == 1)
        np.testing.assert_allclose(result, clip, atol=1e-5)
        silent, _ = apply_mask(model.config, clip, rate, np.zeros_like(ones))
        assert not silent.any()


def test_a_band_mask_lands_on_its_frequency_in_the_stft():
    model = band_model()
    config, rate = model.config, model.config.sample_rate
    values = np.zeros((config.n_bins, 30))
    values[BAND_A] = 1.0
    n_fft = fft_size(rate)
    on_grid = scaleogram_to_stft(config, values, rate, n_fft, 20)
    freqs = np.fft.rfftfreq(n_fft, 1 / rate)
    nearest = np.argmin(np.abs(freqs - band_frequencies(config)[BAND_A]))
    assert on_grid[nearest].min() > 0.5 and on_grid[np.argmin(np.abs(freqs - 1000))].max() == 0
    with pytest.raises(ValueError, match="shape \\(24, frames\\)"):
        scaleogram_to_stft(config, values[:3], rate, n_fft, 20)


def test_mask_from_relevance_is_the_scaled_positive_part():
    np.testing.assert_allclose(mask_from_relevance(np.array([[-2.0, 1.0, 4.0]])), [[0.0, 0.25, 1.0]])
    assert not mask_from_relevance(np.array([[-1.0, 0.0]])).any()
