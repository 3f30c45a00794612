"""Contrastive predictive coding loss (InfoNCE) and its score-across-time-steps (SAT) variant.

For a context ``c_n`` (batch item ``n``, context step ``j``) and future step ``k = 1..K`` the
prediction is ``M_k c_n`` and its target the encoding ``z_{n,k}`` that lies ``gap + k`` steps after the
last encoding ``c_n`` has seen. Scores are dot products ``s(n; m, l) = z_{m,l}^T M_l c_n``.

- ``"cpc"``: ``-log exp s(n; n, k) / sum_m exp s(n; m, k)``: the true future against the futures at
  the same step of every batch item ``m`` (the denominator runs over targets, as published).
- ``"sat"``: ``-log exp s(n; n, k) / sum_{m, l} exp s(n; m, l)``: against every batch item and every
  step ``l``. All K positives of a context share one softmax, so this loss cannot go below log K.

The returned loss is the published sum divided by the number of terms (contexts x batch x steps), so
its scale does not depend on batch size. Accuracy, for both variants, is the fraction of terms whose
true future outscores the same step's futures of all other batch items (so the variants compare).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

VARIANTS = ("cpc", "sat")


def context_targets(z: torch.Tensor, n_context_steps: int, *, steps: int, gap: int,
                    context_stride: int, n_context: int | None) -> tuple[slice, torch.Tensor]:
    """Which context steps have all their targets in ``z``, and those targets ``(B, J, K, D)``.

    Context step ``j`` has seen ``z[:, :context_stride * (j + 1)]``; its target ``k`` (1-based) is
    ``z[:, context_stride * (j + 1) - 1 + gap + k]``. The last ``n_context`` usable steps are taken
    (all usable ones when ``None``).
    """
    length = z.shape[1]
    usable = min((length - gap - steps) // context_stride, n_context_steps)
    if usable < 1:
        raise ValueError(
            f"z has {length} steps and c {n_context_steps}: no context has all gap + steps = "
            f"{gap + steps} targets after it (context_stride={context_stride})"
        )
    if n_context is None:
        n_context = usable
    if not 1 <= n_context <= usable:
        raise ValueError(f"n_context must be in [1, {usable}] for these shapes, got {n_context}")
    first = usable - n_context
    offsets = torch.arange(first, usable, device=z.device) * context_stride + context_stride - 1 + gap
    index = offsets[:, None] + torch.arange(1, steps + 1, device=z.device)[None, :]
    return slice(first, usable), z[:, index]


def cpc_loss(z: torch.Tensor, c: torch.Tensor, predictors: Sequence[Callable[[torch.Tensor], torch.Tensor]],
             *, steps: int = 16, gap: int = 4, variant: str = "cpc", n_context: int | None = None,
             context_stride: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE loss and prediction accuracy for encodings ``z (B, T, D)`` and contexts ``c (B, Tc, Dc)``.

    ``predictors[k - 1]`` maps ``c`` to the prediction of step ``k``; ``context_stride`` is the number of
    z steps per c step (``CPC.receptive_field().context_stride``).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if z.dim() != 3 or c.dim() != 3 or z.shape[0] != c.shape[0]:
        raise ValueError(f"z and c must be (B, T, D) with the same B, got {tuple(z.shape)} and {tuple(c.shape)}")
    if steps < 1 or gap < 0 or context_stride < 1:
        raise ValueError(f"need steps >= 1, gap >= 0, context_stride >= 1; got {steps}, {gap}, {context_stride}")
    if len(predictors) < steps:
        raise ValueError(f"need a predictor per step: {steps} steps, {len(predictors)} predictors")
    used, targets = context_targets(z, c.shape[1], steps=steps, gap=gap, context_stride=context_stride,
                                    n_context=n_context)
    contexts = c[:, used]
    predictions = torch.stack([predictors[k](contexts) for k in range(steps)], dim=2)  # (B, J, K, D)
    # scores[j, n, m, l] = z_{m, j, l} . M_l c_{n, j}
    scores = torch.einsum("njld,mjld->jnml", predictions, targets)
    batch = z.shape[0]
    eye = torch.arange(batch, device=z.device)
    if variant == "cpc":
        log_prob = scores - torch.logsumexp(scores, dim=2, keepdim=True)
    else:
        flat = scores.flatten(2)  # (J, B, B * K): candidates (m, l) at m * K + l
        log_prob = (flat - torch.logsumexp(flat, dim=2, keepdim=True)).view_as(scores)
    positive = log_prob[:, eye, eye, :]  # (J, B, K)
    correct = scores.argmax(dim=2)[:, eye, :] == eye[None, :, None]
    return -positive.mean(), correct.float().mean()
