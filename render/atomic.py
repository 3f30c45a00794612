"""Write a file so that it is either complete or absent: into a temporary file beside it, renamed on success."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix, so writers that go by it choose the same format), renamed to
    ``path`` when the block ends without error and removed otherwise."""
    path = Path(path)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".partial" + path.suffix)
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        umask = os.umask(0)
        os.umask(umask)
        partial.chmod(0o666 & ~umask)  # mkstemp makes files private; give the mode a plain file would have
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
