"""Read and write the package's ``.npz`` files (layouts, graphs, activations): plain arrays, no pickle.

Reading says what a wrong file is (missing, a folder, damaged, a single array, another kind of ours, another
program's) in one sentence that names it; writing goes to a temporary file renamed into place
(``whole_file``, also for the application's other outputs), so a failure never leaves a half-written file
where a whole one is expected.
"""
from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

# The arrays by which each kind of file is recognised (for saying what a wrong file is).
SIGNATURES = {"layout": ("positions", "layers"), "activations": ("values", "layer_names"),
              "graph": ("layer_names", "edges")}
_UNREADABLE = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)


def _kind(names: Sequence[str]) -> str | None:
    """Which of this package's files has these arrays (None: another program's)."""
    for kind, signature in SIGNATURES.items():
        if "format_version" in names and all(name in names for name in signature):
            return kind
    return None


def read_arrays(path: str | os.PathLike, kind: str, names: Sequence[str], version: int) -> dict[str, np.ndarray]:
    """The arrays ``names`` of a ``kind`` file (``format_version`` must equal ``version``), read in full."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder, not a {kind} .npz file")
    if not path.is_file():
        raise FileNotFoundError(f"{kind} file {str(path)!r} does not exist")
    try:
        data = np.load(path, allow_pickle=False)
    except _UNREADABLE as exc:
        raise ValueError(f"{str(path)!r} is not a {kind} file: not a readable .npz archive (damaged, truncated or "
                         f"another format: {type(exc).__name__})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{str(path)!r} holds a single array, not a {kind} .npz file")
    with data:
        found = _kind(data.files)
        if found is None:
            raise ValueError(f"{str(path)!r} is an .npz of another program (arrays {sorted(data.files)}), "
                             f"not a {kind} file")
        if found != kind:
            raise ValueError(f"{str(path)!r} is a saved {found} file, not a {kind} file")
        missing = [name for name in names if name not in data.files]
        if missing:
            raise ValueError(f"{str(path)!r} lacks the arrays {missing} of a {kind} file")
        try:
            arrays = {name: data[name] for name in ("format_version", *names)}
        except _UNREADABLE as exc:
            raise ValueError(f"{str(path)!r} is damaged: its arrays do not read ({type(exc).__name__})") from None
    found = int(arrays.pop("format_version"))
    if found != version:
        raise ValueError(f"{str(path)!r} has {kind} format version {found}; this version reads format {version} only")
    return arrays


def write_arrays(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Write ``arrays`` to ``path`` (``.npz`` appended when missing, as numpy does) as a whole: a temporary file
    in the same folder, then renamed; returns the path written."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    with whole_file(path) as partial, open(partial, "wb") as file:
        np.savez(file, **arrays)
    return path


def default_file_mode() -> int:
    """The mode a plainly created file gets under the current umask (mkstemp makes files private)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def whole_file(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary path beside ``path`` (hidden, unique, same suffix, so writers that go by it still do)
    for the block to write; renamed to ``path`` with a plain file's mode when the block succeeds, removed when
    it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".partial" + path.suffix)
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        partial.chmod(default_file_mode())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
