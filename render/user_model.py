"""A user's network without unpickling anything: ``package.module:factory`` (an import path to a function that
returns the model, the way uvicorn and gunicorn take an app) or a ``torch.export`` program ``.pt2``."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

from torch import nn

IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
EXPORT_SUFFIX = ".pt2"


def is_import_path(spec: str | Path) -> bool:
    """Whether ``spec`` reads as ``package.module:factory`` (and is not a file)."""
    return bool(IMPORT_PATH.match(str(spec))) and not Path(spec).exists()


def model_from_factory(spec: str) -> nn.Module:
    """The module that the zero-argument function at ``package.module:factory`` returns."""
    module_name, _, attribute = spec.partition(":")
    try:
        target = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--model {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"--model {spec!r}: {module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"--model {spec!r}: {attribute!r} is a {type(target).__name__}, not a function returning a "
                        "model")
    try:
        model = target()
    except Exception as exc:
        raise ValueError(f"--model {spec!r}: the factory raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, nn.Module):
        raise TypeError(f"--model {spec!r}: the factory returned a {type(model).__name__}, not a torch.nn.Module")
    return model.eval()


def model_from_export(path: str | Path) -> nn.Module:
    """The module of the ``torch.export`` program saved at ``path`` (``torch.export.save``)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--model {str(path)!r}: no such exported program")
    try:
        program = torch.export.load(path)
    except Exception as exc:
        raise ValueError(f"--model {str(path)!r} is not a torch.export program ({type(exc).__name__}: {exc}); "
                         "write one with torch.export.save") from exc
    return ExportedNetwork(program.module())


class ExportedNetwork(nn.Module):
    """The module of a ``torch.export`` program, whose mode was fixed when it was exported: ``train``/``eval``
    (which the program's module refuses) only set this wrapper's flag."""

    def __init__(self, program: nn.Module) -> None:
        super().__init__()
        self.program = program

    def train(self, mode: bool = True) -> "ExportedNetwork":
        self.training = mode
        return self

    def forward(self, *inputs):
        return self.program(*inputs)
