"""The gallery's per-tap portraits: titles as in the article, scores and the aim."""
import numpy as np
import pytest

from immersions.cpc.config import get_config
from immersions.cpc.gallery import GallerySettings, TapPortrait, portrait, tap_title
from immersions.cpc.model import CPC
from immersions.cpc.objectives import layer
from immersions.cpc.optimize import OptimizeSettings, clip_score, start_clip
from immersions.cpc.regularizers import Regularization
from tests.cpc.test_train import tiny_model


def test_taps_are_titled_as_in_the_article_in_network_order():
    titles = [tap_title(tap) for tap in CPC(get_config("lean")).tap_names()]
    assert titles[:3] == ["Encoder Block 0 Convolution 1", "Encoder Block 0 Convolution 2",
                          "Encoder Block 1 Convolution 1"]
    assert titles[15:17] == ["Encoder Block 7 Convolution 2", "Autoregressive Model Block 0"]
    assert titles[-1] == "Autoregressive Model Block 8" and len(titles) == 25
    assert tap_title("somewhere.else") == "somewhere.else"


def _portrait(silence: float, score: float, shifted: tuple[float, float]) -> TapPortrait:
    return TapPortrait(tap="t", title="t", audio=np.zeros(4, np.float32), silence_score=silence, score=score,
                       shifted_scores={"-0.5": shifted[0], "+0.5": shifted[1]}, step_scores=[])


def test_gain_and_what_a_shift_keeps():
    good = _portrait(0.1, 2.0, (1.2, 1.9))
    assert good.gain == pytest.approx(20) and good.kept_under_shift == pytest.approx(1.1 / 1.9) and good.meets_aim
    assert not _portrait(0.1, 2.0, (0.5, 1.9)).meets_aim            # a shift keeps a fifth of the gain
    assert not _portrait(0.1, 0.5, (0.5, 0.5)).meets_aim            # only 5x
    assert not _portrait(0.5, 0.4, (0.4, 0.4)).meets_aim and _portrait(0.5, 0.4, (0.4, 0.4)).kept_under_shift is None
    silent = _portrait(0.0, 1.0, (0.9, 0.8))                           # silence leaves the tap off
    assert silent.gain is None and silent.meets_aim


def test_a_portrait_grows_the_clip_and_scores_it_on_silence_and_under_shifts():
    model = tiny_model().eval()
    settings = GallerySettings(seconds=0.5, shift_seconds=0.1, optimize=OptimizeSettings(
        steps=4, lr=5e-3, regularization=Regularization.off(), seed=2))
    result = portrait(model, "ar.blocks.1.relu", settings, progress=False)
    objective = layer("ar.blocks.1.relu")
    assert result.title == "Autoregressive Model Block 1" and result.audio.shape == (4000,)
    assert np.abs(result.audio).max() > 10 * np.abs(start_clip("silence", 4000, seed=2)).max()   # grown
    assert result.silence_score == pytest.approx(clip_score(model, objective, start_clip("silence", 4000, seed=2)))
    assert result.score == pytest.approx(clip_score(model, objective, result.audio)) and len(result.step_scores) == 4
    assert result.shifted_scores == {"-0.1": pytest.approx(clip_score(model, objective, np.roll(result.audio, -800))),
                                     "+0.1": pytest.approx(clip_score(model, objective, np.roll(result.audio, 800)))}
    with pytest.raises(ValueError, match="unknown tap 'nope'"):
        portrait(model, "nope", settings)
    with pytest.raises(ValueError, match="shift_seconds=5"):
        GallerySettings(seconds=4, shift_seconds=5)
