"""CPC / SAT loss against an explicit loop over contexts, batch items and steps."""
import math

import pytest
import torch
from torch import nn

from immersions.cpc.loss import context_targets, cpc_loss


def _predictors(steps: int, dc: int, d: int, seed: int = 0) -> nn.ModuleList:
    torch.manual_seed(seed)
    return nn.ModuleList(nn.Linear(dc, d, bias=False) for _ in range(steps))


def _reference(z, c, predictors, steps, gap, variant, n_context, stride):
    """Slow loop: one log-softmax per (context step, batch item, future step)."""
    batch, length = z.shape[:2]
    usable = min((length - gap - steps) // stride, c.shape[1])
    first = usable - (n_context or usable)
    terms, hits = [], []
    for j in range(first, usable):
        last_seen = stride * (j + 1) - 1
        for n in range(batch):
            candidates = {}
            for m in range(batch):
                for k in range(1, steps + 1):
                    prediction = predictors[k - 1](c[n, j])
                    candidates[m, k] = torch.dot(z[m, last_seen + gap + k], prediction)
            for k in range(1, steps + 1):
                if variant == "cpc":
                    pool = torch.stack([candidates[m, k] for m in range(batch)])
                else:
                    pool = torch.stack(list(candidates.values()))
                terms.append(torch.logsumexp(pool, 0) - candidates[n, k])
                same_step = torch.stack([candidates[m, k] for m in range(batch)])
                hits.append(float(int(same_step.argmax()) == n))
    return torch.stack(terms).mean(), sum(hits) / len(hits)


@pytest.mark.parametrize("variant", ["cpc", "sat"])
@pytest.mark.parametrize("stride, n_context", [(4, None), (4, 2), (2, 3), (1, None)])
def test_loss_matches_explicit_loop(variant, stride, n_context):
    generator = torch.Generator().manual_seed(3)
    batch, length, d, dc, steps, gap = 3, 30, 6, 5, 4, 2
    z = torch.randn(batch, length, d, generator=generator)
    c = torch.randn(batch, math.ceil(length / stride), dc, generator=generator)
    predictors = _predictors(steps, dc, d)
    loss, accuracy = cpc_loss(z, c, predictors, steps=steps, gap=gap, variant=variant, n_context=n_context,
                              context_stride=stride)
    ref_loss, ref_accuracy = _reference(z, c, predictors, steps, gap, variant, n_context, stride)
    assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-5)
    assert accuracy.item() == pytest.approx(ref_accuracy)


def test_targets_skip_the_gap_after_the_last_seen_step():
    z = torch.arange(40, dtype=torch.float32)[None, :, None]  # z value == its time index
    used, targets = context_targets(z, 10, steps=3, gap=4, context_stride=4, n_context=None)
    assert used == slice(0, 8)  # (40 - 4 - 3) // 4 contexts have all targets
    # context j has seen z[:4 (j + 1)]: last seen 4 j + 3; targets 4 j + 3 + 4 + k
    for j in range(8):
        assert targets[0, j, :, 0].tolist() == [4 * j + 3 + 4 + k for k in (1, 2, 3)]


@pytest.mark.parametrize("variant, chance", [("cpc", 4), ("sat", 4 * 5)])
def test_uninformative_scores_give_log_of_the_candidate_count(variant, chance):
    z = torch.zeros(4, 40, 6)
    c = torch.randn(4, 10, 5)
    loss, _ = cpc_loss(z, c, _predictors(5, 5, 6), steps=5, gap=4, variant=variant)
    assert loss.item() == pytest.approx(math.log(chance), rel=1e-6)


@pytest.mark.parametrize("variant", ["cpc", "sat"])
def test_predictable_futures_give_full_accuracy_and_the_loss_floor(variant):
    """Targets equal to scaled predictions; the SAT floor is log K (all K positives share one softmax)."""
    generator = torch.Generator().manual_seed(4)
    batch, length, d, steps, gap, stride = 6, 48, 8, 4, 2, 4
    c = torch.nn.functional.normalize(torch.randn(batch, length // stride, d, generator=generator), dim=-1)
    predictors = _predictors(steps, d, d)
    for predictor in predictors:
        nn.init.orthogonal_(predictor.weight)
    z = torch.zeros(batch, length, d)
    with torch.no_grad():
        for j in range(c.shape[1]):
            for k in range(1, steps + 1):
                index = stride * (j + 1) - 1 + gap + k
                if index < length:
                    z[:, index] = 100 * predictors[k - 1](c[:, j])
    loss, accuracy = cpc_loss(z, c, predictors, steps=steps, gap=gap, variant=variant, context_stride=stride)
    assert accuracy.item() == 1.0
    floor = 0.0 if variant == "cpc" else math.log(steps)
    assert loss.item() == pytest.approx(floor, abs=0.05)


def test_gradients_reach_z_c_and_every_predictor():
    z = torch.randn(3, 36, 6, requires_grad=True)
    c = torch.randn(3, 9, 5, requires_grad=True)
    predictors = _predictors(4, 5, 6)
    loss, _ = cpc_loss(z, c, predictors, steps=4, gap=4, variant="sat")
    loss.backward()
    assert z.grad.abs().sum() > 0 and c.grad.abs().sum() > 0
    assert all(p.weight.grad.abs().sum() > 0 for p in predictors)


def test_invalid_arguments_raise():
    z, c = torch.randn(2, 30, 6), torch.randn(2, 8, 5)
    predictors = _predictors(4, 5, 6)
    with pytest.raises(ValueError, match="variant"):
        cpc_loss(z, c, predictors, steps=4, variant="nce")
    with pytest.raises(ValueError, match="predictor"):
        cpc_loss(z, c, predictors, steps=5)
    with pytest.raises(ValueError, match="no context"):
        cpc_loss(z[:, :7], c, predictors, steps=4, gap=4)
    with pytest.raises(ValueError, match="n_context"):
        cpc_loss(z, c, predictors, steps=4, gap=4, n_context=10)
    with pytest.raises(ValueError, match="same B"):
        cpc_loss(z, c[:1], predictors, steps=4)
