"""The fused Triton Barnes-Hut kernel against the exact sum and bh_torch, on the CPU in Triton's interpreter.

Triton picks compiled or interpreted code when a function is decorated, its own library included
(``tl.sum``...), so ``TRITON_INTERPRET=1`` must be set before ``triton`` is imported. The kernel calls
therefore run in one spawned worker process that starts with the variable set; this process (and every
other test) keeps compiled Triton, checked by compiling every kernel for an H100 (sm_90) without a GPU.
Tests marked ``gpu`` run the compiled kernels on CUDA.
"""
from __future__ import annotations

import importlib.util
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest
import torch

triton = pytest.importorskip("triton")

from immersions.layout.backends import _bvh_triton, bh_torch, bh_triton, exact, get_backend  # noqa: E402
from immersions.layout.backends._bvh_torch import hilbert_order, summarize, tree_shape  # noqa: E402

INTERPRETED_HERE = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


@pytest.fixture(scope="module")
def interpreted():
    """``function(*args, **kwargs)`` (bh_triton.repulsion unless given) run by a worker whose triton runs in
    interpreter mode."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRITON_INTERPRET", "1")
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        pool.submit(int).result()  # the worker starts (and inherits the variable) now

    def call(*args, function=bh_triton.repulsion, **kwargs) -> torch.Tensor:
        return pool.submit(function, *args, **kwargs).result()

    yield call
    pool.shutdown()


def _points(kind: str, n: int, dim: int, seed: int, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform or clustered (Gaussian blobs of widths 1e-3 .. 1) points; charges in [0, 2], 5% exactly 0."""
    g = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        pos = torch.rand(batch, n, dim, generator=g)
    else:
        centres = torch.rand(batch, 12, dim, generator=g)
        widths = 10 ** (-3 * torch.rand(batch, 12, generator=g))
        label = torch.randint(0, 12, (batch, n), generator=g)
        pick = torch.gather(centres, 1, label[..., None].expand(-1, -1, dim))
        pos = pick + 0.05 * torch.gather(widths, 1, label)[..., None] * torch.randn(batch, n, dim, generator=g)
    charge = 2 * torch.rand(batch, n, generator=g)
    charge[torch.rand(batch, n, generator=g) < 0.05] = 0.0
    return pos.float(), charge.float()


def _errors(approx: torch.Tensor, pos: torch.Tensor, charge: torch.Tensor, k: float) -> torch.Tensor:
    """Per-vertex |f - f_exact| / |f_exact| against the float64 exact sum (vertices with a force)."""
    ref = exact.repulsion(pos.double(), charge.double(), k)
    norm = ref.norm(dim=-1)
    keep = norm > 1e-12 * norm.max()
    return (approx.double() - ref).norm(dim=-1)[keep] / norm[keep]


@pytest.mark.parametrize("dim", [2, 3])
def test_fused_hilbert_order_equals_the_torch_one(interpreted, dim):
    g = torch.Generator().manual_seed(dim)
    uniform = torch.rand(2, 1500, dim, generator=g)
    uniform[:, ::7] = uniform[:, :1].clone()  # ties keep their input order in both
    clustered = 1000 * torch.rand(2, 1, dim, generator=g) + 1e-3 * torch.randn(2, 1500, dim, generator=g)
    for pos in (uniform, clustered, uniform[:, :1], uniform[:, :3]):
        assert torch.equal(interpreted(pos, function=_bvh_triton.fused_hilbert_order), hilbert_order(pos))


@pytest.mark.parametrize("dim,n,theta", [(2, 1000, 0.5), (3, 700, 0.0), (2, 1, 1.0)])
def test_tree_kernels_summarize_like_the_torch_tree(interpreted, dim, n, theta):
    pos, charge = _points("clustered", n, dim, seed=n, batch=2)
    levels, leaf = tree_shape(n, 16)
    axes = 2 if dim == 2 else 4
    padded = leaf * 2 ** levels
    pos = torch.cat([pos, pos[:, -1:].expand(-1, padded - n, -1)], 1)
    charge = torch.cat([charge, charge.new_zeros(2, padded - n)], 1)
    planes = torch.nn.functional.pad(pos, (0, axes - dim)).transpose(1, 2).contiguous()
    group_level = max(levels - 1, 0)
    nodes, boxes = interpreted(planes, charge, levels, leaf, theta, group_level, function=_bvh_triton.tree_table)
    summary = summarize(pos, charge, levels, leaf)
    table = torch.cat(summary, 1)
    low, high, weight = table[..., dim:2 * dim], table[..., 2 * dim:3 * dim], table[..., 3 * dim + 1]
    extent = high - low
    reach2 = torch.maximum(extent.amax(-1).square() / theta ** 2 if theta else torch.full_like(weight, torch.inf),
                           extent.square().sum(-1))
    reach2 = torch.where(weight > 0, reach2, -1.0)
    close = {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(nodes[..., :dim], table[..., :dim], **close)
    assert (nodes[..., dim:axes] == 0).all()
    torch.testing.assert_close(nodes[..., axes], table[..., 3 * dim], **close)
    torch.testing.assert_close(nodes[..., axes + 1], reach2, **close)
    groups = summary[group_level]
    torch.testing.assert_close(boxes[..., 0, :dim], groups[..., dim:2 * dim], rtol=0, atol=0)
    torch.testing.assert_close(boxes[..., 1, :dim], groups[..., 2 * dim:3 * dim], rtol=0, atol=0)


def test_registry_resolves_bh_triton():
    assert get_backend("bh_triton") is bh_triton.repulsion
    assert get_backend("BH-Triton") is bh_triton.repulsion


@pytest.mark.parametrize("kind", ["uniform", "clustered"])
def test_theta_half_median_error_below_one_percent(interpreted, kind):
    pos, charge = _points(kind, 2000, 2, seed=1)
    force = interpreted(pos, charge, 1.0, 0.5, group=8)
    err = _errors(force, pos, charge, 1.0)
    assert torch.isfinite(force).all()
    assert err.median() <= 0.01, f"{kind}: median relative error {err.median():.2e}"


def test_error_vanishes_at_theta_zero_and_grows_with_theta(interpreted):
    pos, charge = _points("uniform", 500, 2, seed=2)
    medians = [_errors(interpreted(pos, charge, 1.0, theta, group=4), pos, charge, 1.0).median().item()
               for theta in (0.0, 0.5, 1.0, 1.5)]
    assert medians[0] < 1e-5, medians
    assert all(a <= b * (1 + 1e-9) + 1e-7 for a, b in zip(medians, medians[1:])), medians
    assert medians[-1] > 10 * medians[0], medians


def test_batched_snapshots_equal_single_calls(interpreted):
    pos, charge = _points("clustered", 200, 2, seed=3, batch=2)
    both = interpreted(pos, charge, 1.0, 0.5)
    for s in range(2):
        assert torch.equal(both[s:s + 1], interpreted(pos[s:s + 1], charge[s:s + 1], 1.0, 0.5))


@pytest.mark.parametrize("n", [203, 16 * 8 + 1, 33])
def test_n_not_a_multiple_of_the_leaf_is_exact_at_theta_zero(interpreted, n):
    pos, charge = _points("uniform", n, 2, seed=n)
    assert _errors(interpreted(pos, charge, 1.0, 0.0), pos, charge, 1.0).max() < 1e-4


@pytest.mark.parametrize("k", [1.0, 2.0, 3.0, 1.7])
def test_exponents_exact_at_theta_zero_and_close_at_half(interpreted, k):
    pos, charge = _points("clustered", 400, 2, seed=4)
    assert _errors(interpreted(pos, charge, k, 0.0, group=4), pos, charge, k).max() < 1e-4
    assert _errors(interpreted(pos, charge, k, 0.5), pos, charge, k).median() < 0.01


def test_three_dimensions(interpreted):
    pos, charge = _points("clustered", 500, 3, seed=5)
    assert _errors(interpreted(pos, charge, 2.0, 0.0), pos, charge, 2.0).max() < 1e-4
    assert _errors(interpreted(pos, charge, 2.0, 0.5, group=4), pos, charge, 2.0).median() < 0.01


def test_matches_bh_torch_at_theta_zero(interpreted):
    pos, charge = _points("uniform", 400, 2, seed=6, batch=2)
    reference = bh_torch.repulsion(pos, charge, 1.0, 0.0)
    torch.testing.assert_close(interpreted(pos, charge, 1.0, 0.0, group=2), reference, rtol=1e-4,
                               atol=1e-5 * reference.abs().max().item())


def test_groups_of_leaves_share_a_walk_and_stay_exact(interpreted):
    pos, charge = _points("uniform", 300, 2, seed=7)
    for group in (2, 64):  # 64 exceeds the 16 leaves: one program for everything
        assert _errors(interpreted(pos, charge, 1.0, 0.0, group=group), pos, charge, 1.0).max() < 1e-4


def test_single_point_and_coincident_points_feel_nothing(interpreted):
    single = interpreted(torch.rand(1, 1, 2), torch.ones(1, 1), 1.0, 0.5)
    assert torch.equal(single, torch.zeros(1, 1, 2))
    twins = torch.tensor([[[0.3, 0.7], [0.3, 0.7]]])
    for softening in (0.0, 1e-3):
        force = interpreted(twins, torch.ones(1, 2), 1.0, 0.5, softening=softening)
        assert torch.equal(force, torch.zeros(1, 2, 2))
    crowd = torch.full((1, 100, 2), 0.25)  # one spot: zero-size boxes at every level
    for theta in (0.0, 0.5):
        assert torch.equal(interpreted(crowd, torch.ones(1, 100), 1.0, theta), torch.zeros(1, 100, 2))
    trio = torch.tensor([[[0.3, 0.7], [0.3, 0.7], [0.9, 0.1]]])
    force = interpreted(trio, torch.ones(1, 3), 1.0, 0.0, softening=0.0)
    torch.testing.assert_close(force, exact.repulsion(trio, torch.ones(1, 3), 1.0, softening=0.0))


def test_zero_charge_points_exert_nothing(interpreted):
    pos, charge = _points("uniform", 150, 2, seed=8)
    charge[:, ::3] = 0.0
    ghosts = torch.cat([pos, torch.rand(1, 60, 2)], 1)  # extra zero-charge points anywhere
    force = interpreted(ghosts, torch.cat([charge, torch.zeros(1, 60)], 1), 1.0, 0.0)
    torch.testing.assert_close(force[:, :150], interpreted(pos, charge, 1.0, 0.0), rtol=1e-4, atol=1e-6)
    assert torch.equal(force[:, 150:], torch.zeros(1, 60, 2))


def test_float64_in_float64_out(interpreted):
    pos, charge = _points("uniform", 50, 2, seed=9)
    force = interpreted(pos.double(), charge.double(), 1.0, 0.5)
    assert force.dtype == torch.float64 and force.shape == pos.shape


def test_rejects_bad_arguments():
    pos, charge = torch.rand(1, 10, 2), torch.ones(1, 10)
    for name, value in (("group", 3), ("num_warps", 0), ("leaf_min", 0)):
        with pytest.raises(ValueError, match=name):
            bh_triton.repulsion(pos, charge, 1.0, 0.5, **{name: value})
    with pytest.raises(ValueError, match="pos must have shape"):
        bh_triton.repulsion(torch.rand(1, 10, 4), charge, 1.0, 0.5)


@pytest.mark.skipif(INTERPRETED_HERE, reason="this process runs triton in interpreter mode")
def test_cpu_tensors_without_the_interpreter_say_how_to_run():
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        bh_triton.repulsion(torch.rand(1, 10, 2), torch.ones(1, 10), 1.0, 0.5)


def test_without_triton_the_module_imports_and_calls_say_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "triton", None)
    monkeypatch.setitem(sys.modules, "triton.language", None)
    for original in (_bvh_triton, bh_triton):  # fresh copies, the tree module first: bh_triton imports it
        spec = importlib.util.spec_from_file_location(original.__name__, original.__file__)
        fresh = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, fresh)
        spec.loader.exec_module(fresh)
    with pytest.raises(RuntimeError, match="pip install triton"):
        fresh.repulsion(torch.rand(1, 10, 2), torch.ones(1, 10), 1.0, 0.5)


@pytest.mark.skipif(INTERPRETED_HERE, reason="this process runs triton in interpreter mode")
@pytest.mark.parametrize("module,name,constants", [
    (bh_triton, "_walk", {"D": 2, "AXES": 2, "TARGETS": 32, "SOURCES": 32, "POWER": 1}),
    (bh_triton, "_walk", {"D": 2, "AXES": 2, "TARGETS": 64, "SOURCES": 16, "POWER": 3}),
    (bh_triton, "_walk", {"D": 3, "AXES": 4, "TARGETS": 32, "SOURCES": 32, "POWER": 0}),
    (_bvh_triton, "_summarize_leaves", {"AXES": 2, "NODES": 32, "SOURCES": 32}),
    (_bvh_triton, "_summarize_parents", {"AXES": 4, "NODES": 32}),
    (_bvh_triton, "_hilbert_keys", {"D": 2, "BITS": 20, "BLOCK": 1024}),
    (_bvh_triton, "_hilbert_keys", {"D": 3, "BITS": 20, "BLOCK": 1024}),
])
def test_kernels_compile_for_an_h100(module, name, constants):
    """The CUDA code path is checked without a GPU: Triton lowers the kernels to PTX and cubin for sm_90."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel = getattr(module, name)
    names = kernel.arg_names
    types = {"points": "*fp32", "charges": "*fp32", "nodes": "*fp32", "boxes": "*fp32", "order": "*i64",
             "out": "*fp32", "eps2": "fp32", "expo": "fp32", "pos": "*fp32", "low": "*fp32", "side": "*fp32",
             "keys": "*i64", "stats": "*fp32", "theta2": "fp32"}
    signature = {name: "constexpr" if name in constants else types.get(name, "i32") for name in names}
    source = ASTSource(fn=kernel, signature=signature,
                       constexprs={(names.index(name),): value for name, value in constants.items()})
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32), options={"num_warps": 1})
    assert compiled.asm["cubin"] and ".local" not in compiled.asm["ptx"]


@pytest.mark.gpu
@pytest.mark.skipif(INTERPRETED_HERE, reason="this process runs triton in interpreter mode")
@pytest.mark.parametrize("kind,n,dim,k,group", [("uniform", 50_000, 2, 1.0, 1), ("clustered", 50_000, 2, 1.0, 4),
                                               ("clustered", 20_000, 3, 2.0, 1)])
def test_compiled_kernel_on_cuda(kind, n, dim, k, group):
    pos, charge = _points(kind, n, dim, seed=10, batch=2)
    targets = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:500]
    ref = exact.repulsion(pos.double().cuda(), charge.double().cuda(), k, targets=targets.cuda()).cpu()
    force = bh_triton.repulsion(pos.cuda(), charge.cuda(), k, 0.5, group=group).cpu()
    err = (force[:, targets].double() - ref).norm(dim=-1) / ref.norm(dim=-1).clamp_min(1e-300)
    assert torch.isfinite(force).all() and err.median() <= 0.01, err.median()
    single = bh_triton.repulsion(pos[1:].cuda(), charge[1:].cuda(), k, 0.5, group=group).cpu()
    assert torch.equal(force[1:], single)
    assert torch.equal(_bvh_triton.fused_hilbert_order(pos.cuda()), hilbert_order(pos.cuda()))
    small, small_charge = pos[:, :3000].cuda(), charge[:, :3000].cuda()
    exact_small = bh_triton.repulsion(small, small_charge, k, 0.0, group=group).cpu()
    assert _errors(exact_small, pos[:, :3000], charge[:, :3000], k).max() < 1e-4


@pytest.mark.gpu
@pytest.mark.skipif(INTERPRETED_HERE, reason="this process runs triton in interpreter mode")
def test_captured_graph_replays_new_positions():
    pos, charge = _points("clustered", 20_000, 2, seed=11, batch=2)
    replay = bh_triton.capture(pos.cuda(), charge.cuda(), 1.0, 0.5)
    moved = pos.flip(1).cuda()
    assert torch.equal(replay(moved, charge.cuda()).cpu(), bh_triton.repulsion(moved, charge.cuda(), 1.0, 0.5).cpu())
    with pytest.raises(ValueError, match="as captured"):
        replay(moved[:, :10], charge.cuda())


def test_capture_needs_cuda_tensors():
    with pytest.raises(ValueError, match="CUDA"):
        bh_triton.capture(torch.rand(1, 10, 2), torch.ones(1, 10), 1.0, 0.5)
