"""A GL context first, torch's optimisers (and with them Triton) after: the process must survive."""
import subprocess
import sys

import pytest

SCRIPT = """
from immersions.render.offscreen import create_context
try:
    create_context("egl").release()
except RuntimeError:
    raise SystemExit(3)
import torch
layer = torch.nn.Linear(2, 2)
optimizer = torch.optim.Adam(layer.parameters())
layer(torch.ones(2)).sum().backward()
optimizer.step()
import triton  # noqa: F401  (what torch.optim may have loaded lazily; explicit where it did not)
print("survived")
"""


def test_torch_optimisers_work_after_a_gl_context():
    pytest.importorskip("triton")
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    if result.returncode == 3:
        pytest.skip("no EGL context on this machine")
    assert result.returncode == 0 and "survived" in result.stdout, result.stderr[-2000:]
