"""Loops that change while they play: a published loop starts at the next pass, sound and picture agree."""
import numpy as np
import pytest

from immersions.render.loops import KEPT_PASSES, Loop, LoopQueue, fill_from_passes


def loop(value, samples=4, steps=3, neurons=5):
    return Loop.of(np.full(samples, value, np.float32), np.full((steps, neurons), value, np.float32))


def test_a_published_loop_plays_from_the_next_pass_on():
    loops = LoopQueue(loop(0), length=2.0)
    assert loops.at(0.5)[0].audio[0, 0] == 0
    loops.publish(loop(1))
    loops.publish(loop(2))                      # replaces 1, which never started
    assert loops.published == 2
    assert loops.at(1.9)[0].audio[0, 0] == 0    # the pass that is playing keeps its loop
    current, into = loops.at(2.5)
    assert current.audio[0, 0] == 2 and into == pytest.approx(0.5)
    assert loops.at(7.0)[0].audio[0, 0] == 2    # nothing new: later passes repeat the newest
    assert loops.at(2.1)[0].audio[0, 0] == 2    # asking again for a fixed pass gives the same loop


def test_passes_far_behind_fall_back_to_the_oldest_kept():
    loops = LoopQueue(loop(0), length=1.0)
    for index in range(1, KEPT_PASSES + 4):
        loops.publish(loop(index))
        loops.at_pass(index)
    assert loops.at_pass(0).audio[0, 0] == 3    # passes 0-2 were forgotten
    assert loops.at_pass(KEPT_PASSES + 3).audio[0, 0] == KEPT_PASSES + 3


def test_publish_checks_shapes():
    loops = LoopQueue(loop(0), length=1.0)
    with pytest.raises(ValueError, match="5 samples.*4"):
        loops.publish(loop(1, samples=5))
    with pytest.raises(ValueError, match="activations"):
        loops.publish(loop(1, neurons=6))
    with pytest.raises(ValueError, match="audio"):
        loops.publish(Loop.of(None, np.zeros((3, 5), np.float32)))
    with pytest.raises(ValueError, match="length"):
        LoopQueue(loop(0), length=0.0)


def test_fill_from_passes_crosses_pass_boundaries():
    loops = LoopQueue(Loop.of(np.arange(4, dtype=np.float32), None), length=1.0)
    out = np.empty((3, 1), np.float32)
    fill_from_passes(loops, 4, 2, out)
    np.testing.assert_array_equal(out[:, 0], [2, 3, 0])
    loops.publish(Loop.of(10 + np.arange(4, dtype=np.float32), None))
    out = np.empty((6, 1), np.float32)
    fill_from_passes(loops, 4, 5, out)          # the rest of pass 1, then pass 2 with the new loop
    np.testing.assert_array_equal(out[:, 0], [1, 2, 3, 10, 11, 12])
