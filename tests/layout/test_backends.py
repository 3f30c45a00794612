"""Repulsion backends against the exact all-pairs reference: accuracy, batching, charges, robustness."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from immersions.layout.backends import BACKENDS, get_backend
from immersions.layout.backends import exact

BH_BACKENDS = ["bh_numba", "bh_torch"]
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def _backend_on(name: str, device: str):
    """The backend, or a skip when it cannot run on ``device`` (bh_numba is CPU only)."""
    if name == "bh_numba" and device != "cpu":
        pytest.skip("bh_numba runs on the CPU only")
    return get_backend(name)


def _points(kind: str, n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform or clustered (Gaussian mixture of very different widths) points with charges in [0, 2]."""
    g = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        pos = torch.rand(n, dim, generator=g)
    else:
        centres = torch.rand(12, dim, generator=g)
        widths = 10 ** (-3 * torch.rand(12, generator=g))  # 1e-3 .. 1
        label = torch.randint(0, 12, (n,), generator=g)
        pos = centres[label] + 0.05 * widths[label, None] * torch.randn(n, dim, generator=g)
    charge = 2 * torch.rand(n, generator=g)
    charge[torch.rand(n, generator=g) < 0.05] = 0.0
    return pos[None].float(), charge[None].float()


def _relative_error(approx: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-vertex |f - f_ref| / |f_ref|, skipping vertices whose reference force vanishes (zero charge)."""
    norm = ref.norm(dim=-1)
    keep = norm > 1e-12 * norm.max()
    return ((approx - ref).norm(dim=-1)[keep] / norm[keep]).double()


def _reference(pos: torch.Tensor, charge: torch.Tensor, k: float, targets=None) -> torch.Tensor:
    """Exact forces in float64, so the reference carries no rounding error of its own."""
    return exact.repulsion(pos.double(), charge.double(), k, targets=targets)


def test_registry_resolves_every_backend():
    for name in ("bh_numba", "bh_torch", "exact", "auto", "BH-Numba"):
        assert callable(get_backend(name))
    assert set(BH_BACKENDS) <= set(BACKENDS)
    with pytest.raises(ValueError, match="unknown repulsion backend"):
        get_backend("fmm")


def test_exact_targets_match_full():
    pos, charge = _points("uniform", 300, 2, seed=1)
    targets = torch.tensor([0, 17, 299, 5])
    full = exact.repulsion(pos, charge, 1.5)
    torch.testing.assert_close(exact.repulsion(pos, charge, 1.5, targets=targets), full[:, targets])


def test_exact_is_antisymmetric_for_two_points():
    pos = torch.tensor([[[0.0, 0.0], [3.0, 4.0]]], dtype=torch.float64)
    f = exact.repulsion(pos, torch.ones(1, 2, dtype=torch.float64), 2.0, softening=1e-9)
    torch.testing.assert_close(f[0, 0], -f[0, 1])
    torch.testing.assert_close(f[0, 1], torch.tensor([3.0, 4.0], dtype=torch.float64) / 125.0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BH_BACKENDS)
@pytest.mark.parametrize("kind", ["uniform", "clustered"])
@pytest.mark.parametrize("k", [1.0, 2.0])
def test_matches_exact_at_theta_half(backend, device, kind, k):
    repulsion = _backend_on(backend, device)
    pos, charge = _points(kind, 3000, 2, seed=int(k) + len(kind))
    force = repulsion(pos.to(device), charge.to(device), k, 0.5).cpu()
    assert force.shape == pos.shape and force.dtype == pos.dtype
    assert _relative_error(force, _reference(pos, charge, k)).median() <= 0.01


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BH_BACKENDS)
def test_matches_exact_on_sampled_targets_of_large_set(backend, device):
    repulsion = _backend_on(backend, device)
    pos, charge = _points("clustered", 20000, 2, seed=7)
    targets = torch.randperm(20000, generator=torch.Generator().manual_seed(0))[:1000]
    force = repulsion(pos.to(device), charge.to(device), 1.0, 0.5).cpu()[:, targets]
    assert _relative_error(force, _reference(pos, charge, 1.0, targets)).median() <= 0.01


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BH_BACKENDS)
def test_error_vanishes_as_theta_shrinks(backend, device):
    repulsion = _backend_on(backend, device)
    pos, charge = _points("clustered", 2000, 2, seed=3)
    ref = _reference(pos, charge, 1.0)
    errors = [_relative_error(repulsion(pos.to(device), charge.to(device), 1.0, theta).cpu(), ref).median()
              for theta in (1.0, 0.5, 0.25, 0.1)]
    for coarse, fine in zip(errors, errors[1:]):
        assert fine <= 1.2 * coarse + 1e-6
    assert errors[-1] < 1e-4
    at_zero = repulsion(pos.double().to(device), charge.double().to(device), 1.0, 0.0).cpu()
    assert _relative_error(at_zero, ref).max() < 1e-9  # theta = 0 opens everything: exact up to rounding


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BH_BACKENDS)
def test_batch_equals_one_by_one(backend, device):
    repulsion = _backend_on(backend, device)
    sets = [_points(kind, 1500, 2, seed=s) for s, kind in enumerate(["uniform", "clustered", "clustered"])]
    pos = torch.cat([p for p, _ in sets]).to(device)
    charge = torch.cat([q for _, q in sets]).to(device)
    batched = repulsion(pos, charge, 1.0, 0.5)
    singles = torch.cat([repulsion(pos[b:b + 1], charge[b:b + 1], 1.0, 0.5) for b in range(3)])
    torch.testing.assert_close(batched, singles, rtol=1e-5, atol=1e-6 * singles.abs().max().item())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BH_BACKENDS)
def test_charges_scale_force_quadratically_and_zero_charge_feels_nothing(backend, device):
    repulsion = _backend_on(backend, device)
    pos, charge = _points("clustered", 2000, 2, seed=11)
    pos, charge = pos.double().to(device), charge.double().to(device)  # float64: no rounding noise
    base = repulsion(pos, charge, 1.0, 0.5)
    torch.testing.assert_close(repulsion(pos, 3 * charge, 1.0, 0.5), 9 * base, rtol=1e-9, atol=1e-9)
    assert torch.all(base[charge == 0] == 0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BH_BACKENDS)
def test_deterministic(backend, device):
    repulsion = _backend_on(backend, device)
    pos, charge = _points("clustered", 3000, 2, seed=5)
    pos, charge = pos.to(device), charge.to(device)
    assert torch.equal(repulsion(pos, charge, 2.0, 0.5), repulsion(pos, charge, 2.0, 0.5))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BH_BACKENDS)
def test_float64_inputs_stay_float64(backend, device):
    repulsion = _backend_on(backend, device)
    pos, charge = _points("uniform", 500, 2, seed=2)
    force = repulsion(pos.double().to(device), charge.double().to(device), 1.0, 0.0).cpu()
    assert force.dtype == torch.float64
    torch.testing.assert_close(force, _reference(pos, charge, 1.0), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BH_BACKENDS)
def test_matches_exact_in_3d(backend, device):
    repulsion = _backend_on(backend, device)
    pos, charge = _points("clustered", 2000, 3, seed=4)
    force = repulsion(pos.to(device), charge.to(device), 2.0, 0.5).cpu()
    assert _relative_error(force, _reference(pos, charge, 2.0)).median() <= 0.01


@pytest.mark.parametrize("backend", BH_BACKENDS)
def test_invalid_arguments_name_the_argument(backend):
    repulsion = get_backend(backend)
    pos, charge = _points("uniform", 10, 2, seed=0)
    with pytest.raises(ValueError, match="charge"):
        repulsion(pos, charge[:, :5], 1.0, 0.5)
    with pytest.raises(ValueError, match="pos"):
        repulsion(pos[0], charge, 1.0, 0.5)
    with pytest.raises(ValueError, match="theta"):
        repulsion(pos, charge, 1.0, -0.1)
    with pytest.raises(ValueError, match="softening"):
        repulsion(pos, charge, 1.0, 0.5, softening=-1e-3)


def _adversarial_sets():
    """Point sets built to break trees: duplicates, lines, extreme scales and offsets, zero charges."""
    def build(n, shape, scale, offset, seed, zero_charges):
        g = torch.Generator().manual_seed(seed)
        base = torch.rand(n, 2, generator=g, dtype=torch.float64)
        if shape == "coincident":
            base = base[torch.randint(0, max(1, n // 8), (n,), generator=g)]
        elif shape == "collinear":
            base = torch.stack([base[:, 0], 0.5 * base[:, 0]], 1)
        elif shape == "axis":
            base = torch.stack([base[:, 0], torch.zeros(n, dtype=torch.float64)], 1)
        pos = (offset + scale * base).float()[None]
        charge = torch.rand(1, n, generator=g) if not zero_charges else torch.zeros(1, n)
        return pos, charge

    return st.builds(build, n=st.integers(1, 200),
                     shape=st.sampled_from(["coincident", "collinear", "axis", "random"]),
                     scale=st.sampled_from([1e-6, 1e-3, 1.0, 1e3, 1e6]),
                     offset=st.sampled_from([0.0, -1e6, 1e6]),
                     seed=st.integers(0, 2**16), zero_charges=st.booleans())


@pytest.mark.parametrize("backend", BH_BACKENDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=_adversarial_sets(), k=st.sampled_from([1.0, 2.0, 3.5]), theta=st.sampled_from([0.0, 0.5, 1.2]))
def test_adversarial_point_sets_give_finite_forces(backend, points, k, theta):
    pos, charge = points
    force = get_backend(backend)(pos, charge, k, theta)
    assert force.shape == pos.shape
    assert torch.isfinite(force).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BH_BACKENDS + ["exact"])
def test_coincident_points_feel_nothing_from_each_other_without_softening(backend, device):
    repulsion = _backend_on(backend, device)
    pos = torch.tensor([[[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [2.0, 0.0]]], device=device)
    force = repulsion(pos, torch.ones(1, 4, device=device), 1.0, 0.5, softening=0.0).cpu()
    # each of the three coincident points is pushed only by the far one: 1 / 2 along -x
    torch.testing.assert_close(force[0, :3], torch.tensor([[-0.5, 0.0]]).expand(3, -1))
    torch.testing.assert_close(force[0, 3], torch.tensor([1.5, 0.0]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BH_BACKENDS)
def test_tiny_sets(backend, device):
    repulsion = _backend_on(backend, device)
    one = repulsion(torch.ones(2, 1, 2, device=device), torch.ones(2, 1, device=device), 1.0, 0.5)
    assert torch.equal(one.cpu(), torch.zeros(2, 1, 2))
    two = repulsion(torch.full((1, 2, 2), 7.0, device=device), torch.ones(1, 2, device=device), 2.0, 0.5)
    assert torch.equal(two.cpu(), torch.zeros(1, 2, 2))
    apart = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]], device=device)
    f = repulsion(apart, torch.ones(1, 2, device=device), 1.0, 0.5).cpu()
    expected = 1.0 / (1.0 + 1e-6)
    assert math.isclose(f[0, 1, 0].item(), expected, rel_tol=1e-5) and math.isclose(f[0, 0, 0].item(), -expected,
                                                                                      rel_tol=1e-5)


@pytest.mark.gpu
def test_bh_torch_never_synchronises_with_the_host():
    pos, charge = _points("clustered", 5000, 2, seed=9)
    pos, charge = pos.cuda(), charge.cuda()
    repulsion = get_backend("bh_torch")
    repulsion(pos, charge, 1.0, 0.5)  # warm-up: lazy CUDA initialisation may synchronise once
    torch.cuda.set_sync_debug_mode("error")
    try:
        force = repulsion(pos, charge, 1.0, 0.5)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(force).all()
