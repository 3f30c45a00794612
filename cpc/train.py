"""Self-supervised CPC training: seeded, resumable, distributed (torchrun) and mixed precision on GPU.

One process or many: under ``torchrun`` every rank joins the process group from the environment (gloo on
CPU, nccl on GPU) and trains a DistributedDataParallel replica. The global batch of step ``s`` is clips
``s * G .. (s + 1) * G - 1`` of a seeded ``RandomCrops`` set (``G`` = batch size x world size) and rank
``r`` takes its contiguous share, the same partition a DistributedSampler without shuffling gives; since
clips depend only on (seed, index), a resumed run continues with exactly the clips it would have seen.
The learning rate is a pure function of the step (linear warm-up, cosine decay), so resuming needs only
the step, the weights and the optimiser (and loss scaler) state.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .checkpoint import (config_from_dict, config_to_json, load_checkpoint, load_model, resolve_config,
                         save_checkpoint)
from .config import CPCConfig
from .data import AudioCorpus, RandomCrops
from .model import CPC
from .settings import TrainConfig

logger = logging.getLogger(__name__)

LAST_NAME = "last.pt"
BEST_NAME = "best.pt"
METRICS_NAME = "metrics.jsonl"


@dataclass
class TrainResult:
    """What a finished (or resumed-and-finished) run reports."""

    step: int
    last_loss: float
    last_accuracy: float
    best_validation_loss: float
    checkpoint: Path
    model: CPC
    history: list[dict[str, float]] = field(default_factory=list)


def set_cpu_threads(threads: int | None) -> None:
    """Set torch's CPU threads (None keeps its choice); on a busy shared machine one thread is fastest."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"threads={threads} must be at least 1 or None")
    torch.set_num_threads(threads)


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up to ``lr`` over ``warmup_steps``, then cosine decay to ``min_lr_ratio * lr``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(config.steps - config.warmup_steps, 1)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return config.lr * (config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine)


class CPCObjective(nn.Module):
    """Audio -> (loss, accuracy): the part DistributedDataParallel wraps, predictors included."""

    def __init__(self, model: CPC, variant: str, n_context: int):
        super().__init__()
        self.model = model
        self.variant = variant
        self.n_context = n_context

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, c = self.model(audio)
        return self.model.loss(z.float(), c.float(), variant=self.variant, n_context=self.n_context)


@dataclass(frozen=True)
class Distributed:
    """This process's place in the run: rank, world size and device."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@contextlib.contextmanager
def distributed_context() -> Iterator[Distributed]:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on GPU, gloo on CPU); leave it after."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world_size == 1:
        yield Distributed(0, 1, device)
        return
    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    try:
        yield Distributed(dist.get_rank(), dist.get_world_size(), device)
    finally:
        if joined:
            dist.destroy_process_group()


def _autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for this device, or None for full precision (always on CPU)."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices and kernels only (not on biases and norm scales)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)


def _step(objective: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
          audio: torch.Tensor, amp_dtype: torch.dtype | None, grad_clip: float) -> tuple[float, float, float]:
    """One optimiser step (autocast when asked, scaled loss for fp16, clipped gradients): loss, accuracy,
    gradient norm before clipping."""
    autocast = torch.autocast(audio.device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
    with autocast:
        loss, accuracy = objective(audio)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    grad_norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    scaler.step(optimizer)
    scaler.update()
    return loss.item(), accuracy.item(), float(grad_norm)


def _batch(crops: RandomCrops, step: int, place: Distributed, batch_size: int) -> torch.Tensor:
    """This rank's share of the global batch of a step."""
    first = (step * place.world_size + place.rank) * batch_size
    return torch.stack([crops[(first + i) % len(crops)] for i in range(batch_size)])


def _sync_buffers(model: nn.Module, place: Distributed) -> None:
    """Make every rank hold rank 0's buffers (BatchNorm statistics drift apart between broadcasts)."""
    if place.world_size > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


@torch.no_grad()
def validation_loss(model: CPC, clips: torch.Tensor, config: TrainConfig, batch_size: int) -> float:
    """Mean loss of the model (eval mode) over fixed validation clips."""
    was_training = model.training
    model.eval()
    losses = []
    for chunk in clips.split(batch_size):
        if len(chunk) < 2:
            continue
        z, c = model(chunk)
        losses.append(model.loss(z.float(), c.float(), variant=config.variant, n_context=config.n_context)[0].item())
    model.train(was_training)
    return float(sum(losses) / max(len(losses), 1))


def _payload(model: CPC, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, step: int,
             best: float, config: TrainConfig) -> dict[str, Any]:
    """Checkpoint contents: tensors, numbers and strings only."""
    return {"model_config": config_to_json(model.config), "train_config": json.dumps(asdict(config)),
            "step": step, "best_validation_loss": best, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict()}


def _initial_model(config: TrainConfig, model_config: str | Path | CPCConfig) -> CPC | None:
    """The model named by ``init_from`` (None without one); its architecture overrides ``model_config``."""
    if config.init_from is None:
        return None
    initial = load_model(config.init_from)
    requested = resolve_config(model_config)
    if requested != initial.config:
        logger.warning("init_from=%s has the architecture %r; the model config %r is ignored",
                       config.init_from, initial.config.name, requested.name)
    return initial


def train(config: TrainConfig, model_config: str | Path | CPCConfig = "lean", *, resume: bool = True,
          stop_after: int | None = None) -> TrainResult:
    """Train a CPC model; resume from ``out_dir/last.pt`` when it exists and ``resume`` is set.

    A fresh run with ``config.init_from`` starts from that model's weights (fine-tuning: new optimiser and
    schedule); a resumed run continues from its own checkpoint.

    ``stop_after`` ends this call after that many steps (with a checkpoint) for time-limited jobs; a later
    call resumes and finishes the same schedule.
    """
    if stop_after is not None and stop_after < 1:
        raise ValueError(f"stop_after={stop_after} must be at least 1 or None")
    out_dir = Path(config.out_dir)
    last_path, best_path = out_dir / LAST_NAME, out_dir / BEST_NAME
    with distributed_context() as place:
        out_dir.mkdir(parents=True, exist_ok=True)
        state = load_checkpoint(last_path, place.device) if resume and last_path.is_file() else None
        initial = _initial_model(config, model_config) if state is None else None
        cpc_config = (config_from_dict(json.loads(state["model_config"])) if state is not None
                      else initial.config if initial is not None else resolve_config(model_config))
        torch.manual_seed(config.seed)  # identical initial weights on every rank
        model = CPC(cpc_config).to(place.device)
        if initial is not None:
            model.load_state_dict(initial.state_dict())
        clip_samples = model.clip_samples(config.n_context)
        corpus = AudioCorpus.from_source(config.data, cpc_config.sample_rate, clip_samples,
                                         cache_dir=config.cache_dir)
        global_batch = config.batch_size * place.world_size
        crops = RandomCrops(corpus, config.steps * global_batch, seed=config.seed, group_by=config.batch_by,
                            group_size=global_batch)
        held_out = RandomCrops(corpus, config.validation_clips, seed=config.seed + 1, group_by=config.batch_by,
                               group_size=config.batch_size)
        validation = torch.stack([held_out[i] for i in range(len(held_out))]).to(place.device)
        optimizer = _optimizer(model, config)
        amp_dtype = _autocast_dtype(config.amp, place.device)
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
        step, best = 0, math.inf
        if state is None and place.is_main:
            (out_dir / METRICS_NAME).unlink(missing_ok=True)  # a fresh run starts a fresh log
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            step, best = int(state["step"]), float(state["best_validation_loss"])
            logger.info("resuming from %s at step %d", last_path, step)
        objective = CPCObjective(model, config.variant, config.n_context)
        if place.world_size > 1:
            device_ids = [place.device.index] if place.device.type == "cuda" else None
            objective = DistributedDataParallel(objective, device_ids=device_ids)
        model.train()
        history: list[dict[str, float]] = []
        loss_value, accuracy_value = math.nan, math.nan
        progress = tqdm(total=config.steps, initial=step, desc="training", unit="step", disable=not place.is_main)
        started = time.perf_counter()
        end = config.steps if stop_after is None else min(config.steps, step + stop_after)
        while step < end:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, config)
            audio = _batch(crops, step, place, config.batch_size).to(place.device, non_blocking=True)
            loss_value, accuracy_value, grad_norm = _step(objective, optimizer, scaler, audio, amp_dtype,
                                                          config.grad_clip)
            step += 1
            progress.update(1)
            progress.set_postfix(loss=f"{loss_value:.3f}", acc=f"{accuracy_value:.3f}",
                                 lr=f"{optimizer.param_groups[0]['lr']:.2e}")
            record = {"step": step, "loss": loss_value, "accuracy": accuracy_value,
                      "grad_norm": grad_norm, "lr": optimizer.param_groups[0]["lr"],
                      "seconds": time.perf_counter() - started}
            if step % config.checkpoint_every == 0 or step == end:
                _sync_buffers(model, place)
                record["validation_loss"] = validation_loss(model, validation, config, config.batch_size)
                if place.is_main:
                    if record["validation_loss"] < best:
                        best = record["validation_loss"]
                        save_checkpoint(best_path, _payload(model, optimizer, scaler, step, best, config))
                    save_checkpoint(last_path, _payload(model, optimizer, scaler, step, best, config))
                    logger.info("step %d: validation loss %.4f (best %.4f)", step, record["validation_loss"], best)
            history.append(record)
            if place.is_main:
                with open(out_dir / METRICS_NAME, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
        progress.close()
        if place.world_size > 1:
            dist.barrier()
        return TrainResult(step=step, last_loss=loss_value, last_accuracy=accuracy_value,
                           best_validation_loss=best, checkpoint=last_path, model=model, history=history)
