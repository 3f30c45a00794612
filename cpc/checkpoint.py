"""Checkpoints that load with ``torch.load(weights_only=True)``: tensors, numbers and strings only.

The model configuration travels inside every checkpoint as a JSON string, so a checkpoint alone rebuilds
its model; writes go to a temporary file first and are renamed into place, so an interrupted run never
leaves a half-written checkpoint behind.
"""
from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, fields
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .config import ARBlockSpec, CPCConfig, EncoderBlockSpec, get_config
from .model import CPC

FORMAT_VERSION = 1
ASSETS_PACKAGE = "immersions.cpc"
ASSETS_FOLDER = "assets"


def config_to_json(config: CPCConfig) -> str:
    """A CPCConfig as a JSON string (block specs become objects, tuples lists)."""
    return json.dumps(asdict(config), sort_keys=True)


def config_from_dict(values: dict[str, Any]) -> CPCConfig:
    """Rebuild a CPCConfig from its dict form (as written by ``config_to_json``)."""
    known = {f.name for f in fields(CPCConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown CPC config fields {unknown}; allowed: {sorted(known)}")
    values = dict(values)
    if "encoder" in values:
        values["encoder"] = tuple(EncoderBlockSpec(int(b["channels"]), tuple(b["conv1"]), int(b["pool"]),
                                                   tuple(b["conv2"])) for b in values["encoder"])
    if "ar" in values:
        values["ar"] = tuple(ARBlockSpec(int(b["channels"]), int(b["kernel"]), int(b.get("pool", 1)))
                             for b in values["ar"])
    return CPCConfig(**values)


def resolve_config(spec: str | Path | CPCConfig) -> CPCConfig:
    """A CPCConfig from a name in CONFIGS, a JSON file (full or partial, over ``lean``), or itself."""
    if isinstance(spec, CPCConfig):
        return spec
    path = Path(spec)
    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise FileNotFoundError(f"model config file {path} does not exist")
        values = json.loads(path.read_text(encoding="utf-8"))
        base = json.loads(config_to_json(get_config(values.pop("base", "lean"))))
        return config_from_dict({**base, **values})
    return get_config(str(spec))


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save({"format": FORMAT_VERSION, **payload}, partial)
    os.replace(partial, path)


def not_a_checkpoint(path: Path, why: str) -> ValueError:
    """The error for a file that is no checkpoint of this project. torch's own text is left out on purpose:
    it suggests ``weights_only=False``, which would run whatever code a pickle carries."""
    return ValueError(f"{str(path)!r} is not a checkpoint of this project (immersions CPC format {FORMAT_VERSION}): "
                      f"{why}")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint`` (never unpickles arbitrary objects)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses anyway
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # any unreadable file: bytes, a pickle of objects, a damaged archive
        raise not_a_checkpoint(path, f"it does not load as tensors, numbers and strings ({type(exc).__name__})") \
            from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise not_a_checkpoint(path, "it lacks the format marker")
    return payload


def model_from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> CPC:
    """The CPC model stored in a checkpoint, in eval mode."""
    payload = load_checkpoint(path, map_location)
    try:
        model = CPC(config_from_dict(json.loads(payload["model_config"])))
        model.load_state_dict(payload["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first_line = str(exc).strip().partition("\n")[0]  # a state dict's mismatch lists every key below
        raise not_a_checkpoint(Path(path), f"its model does not rebuild ({type(exc).__name__}: {first_line})") \
            from None
    return model.eval()


def export_model(source: str | Path, destination: str | Path, **metadata: str | int | float) -> Path:
    """Write only a checkpoint's model (float32 weights and config) plus metadata: the shippable form."""
    payload = load_checkpoint(source)
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["model"].items()}
    save_checkpoint(destination, {"model_config": payload["model_config"], "model": state,
                                  "step": int(payload.get("step", 0)), "metadata": json.dumps(metadata)})
    return Path(destination)


def pretrained_names() -> list[str]:
    """Names of the checkpoints shipped in ``cpc/assets`` (``<name>.pt``)."""
    assets = resources.files(ASSETS_PACKAGE) / ASSETS_FOLDER
    if not assets.is_dir():
        return []
    return sorted(p.name[:-3] for p in assets.iterdir() if p.name.endswith(".pt"))


def load_pretrained(name: str = "lean", map_location: str | torch.device = "cpu") -> CPC:
    """The shipped CPC model trained on the music21 corpus (see ``cpc/assets/<name>.json``)."""
    asset = resources.files(ASSETS_PACKAGE) / ASSETS_FOLDER / f"{name}.pt"
    if not asset.is_file():
        raise FileNotFoundError(f"no shipped checkpoint named {name!r} in {ASSETS_PACKAGE}/{ASSETS_FOLDER}; available: "
                                f"{pretrained_names() or 'none'}; train one with `immersions train`")
    with resources.as_file(asset) as path:
        return model_from_checkpoint(path, map_location)


def load_model(spec: str | Path, map_location: str | torch.device = "cpu") -> CPC:
    """A CPC model from a checkpoint file or the name of a shipped one, in eval mode."""
    if Path(spec).is_file():
        return model_from_checkpoint(spec, map_location)
    if str(spec) in pretrained_names():
        return load_pretrained(str(spec), map_location)
    raise FileNotFoundError(f"model={str(spec)!r} is neither a checkpoint file nor a shipped model "
                            f"({', '.join(pretrained_names()) or 'none shipped'})")
