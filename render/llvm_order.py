"""Triton's LLVM must be loaded before the GL driver's: the other order crashes the process.

Mesa's software rasteriser llvmpipe (and AMD's radeonsi) carry their own LLVM, and so does Triton, which
torch imports lazily the first time ``torch.optim`` or ``torch.compile`` is used. Loading Triton once a
Mesa context exists segfaults (seen with Mesa's LLVM 15 and Triton 3.9: a render, then training or input
optimisation in the same process); loading it first works. Every place that makes a GL context calls
``load_triton_first`` before; it costs about 0.2 s, once, where Triton is installed, and nothing elsewhere.
"""
from __future__ import annotations

import importlib
import importlib.util


def load_triton_first() -> None:
    """Import Triton now if it is installed, so no GL driver's LLVM is loaded before it."""
    if importlib.util.find_spec("triton") is not None:
        importlib.import_module("triton")
