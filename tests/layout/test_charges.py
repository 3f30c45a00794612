"""Charges from activation variance: mean 1, floored, order-preserving, strict about bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from immersions.layout.charges import charges_from_variance


def test_mean_one_per_snapshot_and_float32():
    variance = np.random.default_rng(0).gamma(0.5, 2.0, (4, 100))
    charges = charges_from_variance(variance)
    assert charges.dtype == np.float32 and charges.shape == (4, 100)
    np.testing.assert_allclose(charges.mean(axis=-1), 1.0, rtol=1e-6)


def test_floor_keeps_dead_neurons_charged():
    variance = np.array([0.0, 0.0, 1.0, 3.0])
    charges = charges_from_variance(variance, floor=0.1)
    assert charges.min() == pytest.approx(0.1)
    assert np.all(charges > 0)
    np.testing.assert_allclose(charges.mean(), 1.0, rtol=1e-6)


def test_power_one_is_affine_in_variance():
    variance = np.array([1.0, 2.0, 5.0, 0.5])
    charges = charges_from_variance(variance, floor=0.2).astype(np.float64)
    expected = 0.2 + 0.8 * variance / variance.mean()
    np.testing.assert_allclose(charges, expected, rtol=1e-6)


def test_power_sharpens_contrast_and_scale_does_not_matter():
    variance = np.random.default_rng(1).random(50) + 0.01
    linear = charges_from_variance(variance)
    squared = charges_from_variance(variance, power=2.0)
    assert squared.max() / squared.min() > linear.max() / linear.min()
    np.testing.assert_allclose(charges_from_variance(variance * 1e30, power=2.0), squared, rtol=1e-5)
    np.testing.assert_allclose(charges_from_variance(variance * 1e-30, power=2.0), squared, rtol=1e-5)


def test_all_zero_snapshot_gets_uniform_charges():
    variance = np.stack([np.zeros(8), np.arange(8.0)])
    charges = charges_from_variance(variance)
    np.testing.assert_array_equal(charges[0], np.ones(8, np.float32))
    assert charges[1, 0] < charges[1, -1]


def test_snapshots_are_normalised_independently():
    variance = np.random.default_rng(2).random((3, 20))
    together = charges_from_variance(variance * np.array([[1.0], [10.0], [1e-3]]))
    for s in range(3):
        np.testing.assert_allclose(together[s], charges_from_variance(variance[s]), rtol=1e-5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_rejected(bad):
    variance = np.ones((2, 10))
    variance[1, 3] = bad
    with pytest.raises(ValueError, match="1 non-finite"):
        charges_from_variance(variance)


def test_non_finite_count_is_reported():
    variance = np.ones(10)
    variance[[1, 4, 7]] = np.nan
    with pytest.raises(ValueError, match="3 non-finite"):
        charges_from_variance(variance)


@pytest.mark.parametrize("kwargs, match", [({"floor": 0.0}, "floor"), ({"floor": 1.5}, "floor"),
                                           ({"power": 0.0}, "power"), ({"power": np.nan}, "power")])
def test_invalid_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        charges_from_variance(np.ones(4), **kwargs)


@pytest.mark.parametrize("variance, match", [(np.ones((2, 2, 2)), "shape"), (np.ones(0), "at least one"),
                                             (np.array([1.0, -0.5]), "1 negative")])
def test_invalid_variance(variance, match):
    with pytest.raises(ValueError, match=match):
        charges_from_variance(variance)


@settings(max_examples=50, deadline=None)
@given(variance=arrays(np.float64, st.integers(1, 40), elements=st.floats(0, 1e6)),
       floor=st.floats(0.01, 1.0), power=st.floats(0.25, 3.0))
def test_properties(variance, floor, power):
    charges = charges_from_variance(variance, floor=floor, power=power)
    assert np.all(np.isfinite(charges))
    assert charges.min() >= floor * (1 - 1e-6)
    np.testing.assert_allclose(charges.mean(), 1.0, rtol=1e-5)
    order = np.argsort(variance, kind="stable")
    assert np.all(np.diff(charges[order].astype(np.float64)) >= -1e-6), "charges follow the variance order"
