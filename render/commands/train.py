"""``immersions train DATA OUT_DIR``: self-supervised CPC training (one process, or many under torchrun)."""
from __future__ import annotations

import argparse
import os

from immersions.cpc.settings import AMP_MODES, TrainConfig

from ._options import add_field_options, field_values

HELP = "train a CPC model on an audio folder or manifest"

_HELP = {
    "steps": "optimiser steps in total",
    "batch_size": "clips per step and rank",
    "lr": "peak learning rate (AdamW)",
    "warmup_steps": "linear warm-up steps before the cosine decay",
    "grad_clip": "gradient norm clip",
    "n_context": "contexts per clip (sets the clip length)",
    "checkpoint_every": "steps between validation + last/best checkpoints",
    "cache_dir": "folder for decoded .npy audio; none: decode into memory",
    "batch_by": "manifest column (e.g. instrument) shared by all clips of a batch; none: mixed batches",
    "init_from": "checkpoint or shipped model (e.g. lean) to fine-tune: its weights and architecture, new schedule",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` command; every TrainConfig field is an option."""
    parser = subparsers.add_parser(
        "train", help=HELP,
        description="Train a CPC model. Distributed: torchrun --nproc_per_node N -m immersions.render.cli train ...")
    parser.add_argument("data", help="audio folder, manifest .csv/.json, or a corpus folder with manifest.csv")
    parser.add_argument("out_dir", help="folder for last.pt, best.pt and metrics.jsonl")
    parser.add_argument("--model", default="lean",
                        help="config name (seed, lean) or a JSON file of CPCConfig fields over 'base'")
    parser.add_argument("--no-resume", dest="resume", action="store_false",
                        help="start afresh even when OUT_DIR/last.pt exists")
    add_field_options(parser, TrainConfig, _HELP, skip=("data", "out_dir"),
                      choices={"amp": AMP_MODES, "variant": ("cpc", "sat")})
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice; 1 is fastest on a busy machine)")
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    """Run training and print where the checkpoint went."""
    from immersions.cpc.train import set_cpu_threads, train

    set_cpu_threads(args.threads)
    result = train(TrainConfig(**field_values(TrainConfig, args)), args.model, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"step {result.step}: loss {result.last_loss:.4f}, accuracy {result.last_accuracy:.3f}, "
              f"best validation loss {result.best_validation_loss:.4f}; checkpoint {result.checkpoint}")
    return 0
