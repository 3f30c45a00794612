"""A loop steered while it grows: changes apply from the next clip, bad changes change nothing."""
from dataclasses import replace

import numpy as np
import pytest

from immersions.cpc.loop_control import SETTING_NAMES, LoopControl, grow_loop, optimize_loop
from immersions.cpc.objectives import Objective, channel, neuron
from immersions.cpc.optimize import (OptimizeSettings, check_objective, clip_score, optimize_clip, start_clip,
                                     tap_shapes)
from tests.cpc.test_optimize import _noise
from tests.cpc.test_train import tiny_model

SETTINGS = OptimizeSettings(steps=3, lr=5e-3, seed=2)
FIRST, SECOND = channel("ar.blocks.1.relu", 1), channel("ar.blocks.0.relu", 2)


@pytest.fixture(scope="module")
def model():
    return tiny_model().eval()


def test_a_change_applies_from_the_next_clip(model):
    control = LoopControl(FIRST, SETTINGS)
    clips = grow_loop(model, control, _noise(model), 3, progress=False)
    first = next(clips)
    control.set_objective(SECOND)
    control.update(steps=2, lr=1e-2, pitch_shift=0, time_shift=0.05)
    second, third = list(clips)
    assert first.objective == FIRST.description and first.settings == replace(SETTINGS, seed=2)
    assert second.objective == third.objective == SECOND.description
    assert len(second.scores) == 2 and second.settings.lr == 1e-2 and second.settings.seed == 3
    assert second.settings.regularization.pitch_shift == 0 and second.settings.regularization.time_shift == 0.05
    assert second.settings.regularization.masks == SETTINGS.regularization.masks       # the rest untouched
    alone = optimize_clip(model, SECOND, first.audio, second.settings, progress=False)
    np.testing.assert_array_equal(second.audio, alone.audio)                           # grown from the first clip


def test_a_change_made_while_a_clip_grows_waits_for_the_next(model):
    """The plan is read once per clip: an objective that changes the plan on its first evaluation (as a
    controller thread might) does not change the clip being grown."""
    control = LoopControl(FIRST, SETTINGS)

    def score(activations):
        if control.plan.settings.steps == SETTINGS.steps:
            control.update(steps=1)
        return FIRST(activations)

    control.set_objective(Objective(score, "changes the plan", FIRST.taps))
    first, second = grow_loop(model, control, _noise(model), 2, progress=False)
    assert len(first.scores) == SETTINGS.steps and len(second.scores) == 1


def test_restart_grows_the_next_clip_from_a_fresh_start(model):
    control = LoopControl(FIRST, SETTINGS)
    clips = grow_loop(model, control, _noise(model), 3, progress=False)
    first = next(clips)
    control.restart("silence")
    second, third = list(clips)
    fresh = start_clip("silence", len(first.audio), SETTINGS.seed + 1)
    assert second.initial_score == pytest.approx(clip_score(model, FIRST, fresh))
    assert second.initial_score != pytest.approx(first.final_score)
    assert third.initial_score == pytest.approx(second.final_score)                    # used up by one clip
    assert control.plan.restart is None
    control = LoopControl(FIRST, SETTINGS)
    clips = grow_loop(model, control, _noise(model, seed=7), 2, progress=False)
    next(clips)
    control.restart("origin")
    (again,) = list(clips)
    assert again.initial_score == pytest.approx(clip_score(model, FIRST, _noise(model, seed=7)))


def test_bad_changes_are_errors_that_change_nothing(model):
    control = LoopControl(FIRST, SETTINGS)
    before = control.plan
    with pytest.raises(ValueError, match="unknown settings \\['volume'\\]"):
        control.update(volume=2)
    with pytest.raises(ValueError, match="steps takes whole numbers"):
        control.update(steps=2.5)
    with pytest.raises(ValueError, match="lr=0"):
        control.update(lr=0, steps=5)
    with pytest.raises(ValueError, match="time_shift=nan must be finite"):
        control.update(time_shift=float("nan"))
    with pytest.raises(ValueError, match="pitch_shift=-1"):
        control.update(pitch_shift=-1)
    with pytest.raises(ValueError, match="'drums' is not one of"):
        control.restart("drums")
    assert control.plan == before
    assert {"steps", "lr", "seed", "pitch_shift", "denoise_strength"} <= set(SETTING_NAMES)


def test_check_objective_names_what_the_taps_lack(model):
    shapes = tap_shapes(model)
    assert list(shapes) == model.tap_names() and shapes["ar.blocks.1.relu"] == (model.config.ar[1].channels,)
    assert len(shapes[model.tap_names()[0]]) == 2                                      # encoder: channels, freq
    check_objective(FIRST, shapes)
    with pytest.raises(ValueError, match="unknown taps \\['ar.blocks.9.relu'\\]"):
        check_objective(channel("ar.blocks.9.relu", 0), shapes)
    with pytest.raises(ValueError, match="channel 99 is out of range"):
        check_objective(channel("ar.blocks.1.relu", 99), shapes)
    encoder_tap = model.tap_names()[0]
    with pytest.raises(ValueError, match="frequency positions"):
        check_objective(neuron(encoder_tap, 0, shapes[encoder_tap][1]), shapes)


def test_optimize_loop_is_a_loop_with_one_plan(model):
    fixed = list(optimize_loop(model, FIRST, _noise(model), 2, SETTINGS, progress=False))
    steered = list(grow_loop(model, LoopControl(FIRST, SETTINGS), _noise(model), 2, progress=False))
    for a, b in zip(fixed, steered):
        np.testing.assert_array_equal(a.audio, b.audio)
