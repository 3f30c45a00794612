"""Load GLSL programs from ``shaders/``: one file per program, stages selected by guards.

Each program file starts with ``#version`` on line 1 and holds every stage behind
``#if defined VERTEX_SHADER ... #elif defined FRAGMENT_SHADER ... #endif`` (optionally
``GEOMETRY_SHADER``). For each stage the loader inserts, right after the ``#version`` line, a
``#define <STAGE> 1`` line, one ``#define NAME VALUE`` per entry of ``defines`` and ``#line 2``, so the
compiler's line numbers match the file. ``#include "other.glsl"`` lines are replaced by that file's text
(recursively). A line map remembers which file and line every emitted line came from, so compile errors
are rewritten to name ``file:line`` whether or not the driver honours ``#line`` source numbers.
Files are read with ``importlib.resources`` from the ``immersions.shaders`` package (or a given folder)
and the preprocessed sources are cached.
"""
from __future__ import annotations

import functools
import importlib.resources
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import moderngl

STAGES: tuple[str, ...] = ("VERTEX_SHADER", "GEOMETRY_SHADER", "FRAGMENT_SHADER")
_MODERNGL_STAGE_ARGUMENT = {
    "VERTEX_SHADER": "vertex_shader",
    "GEOMETRY_SHADER": "geometry_shader",
    "FRAGMENT_SHADER": "fragment_shader",
}
_INCLUDE = re.compile(r'^\s*#include\s+"([^"]+)"\s*$')
# Driver formats: Mesa "0:12(5)", NVIDIA "0(12)", AMD/Intel "ERROR: 0:12:".
_LOCATIONS = (
    re.compile(r"\b(\d+):(\d+)\((\d+)\)"),
    re.compile(r"\b(\d+)\((\d+)\)"),
    re.compile(r"\b(\d+):(\d+):"),
)


class ShaderError(RuntimeError):
    """A shader file is malformed or fails to compile; the message names the file and line."""


@dataclass(frozen=True)
class ShaderSource:
    """Preprocessed text of one stage and, per line after the ``#line 2`` directive, its origin."""

    name: str
    stage: str
    text: str
    origins: tuple[tuple[str, int], ...]

    def origin(self, reported_line: int) -> tuple[str, int]:
        """Map a line number reported by the compiler back to ``(file, line)``."""
        index = reported_line - 2
        if 0 <= index < len(self.origins):
            return self.origins[index]
        return self.name, reported_line


def _read(root: str | None, name: str) -> str:
    if root is None:
        resource = importlib.resources.files("immersions.shaders").joinpath(name)
    else:
        resource = Path(root) / name
    if not resource.is_file():
        raise FileNotFoundError(f"shader file {name!r} not found in {root or 'immersions.shaders'}")
    return resource.read_text(encoding="utf-8")


def _expand(root: str | None, name: str, lines: list[str], stack: tuple[str, ...],
            first_line: int = 1) -> list[tuple[str, str, int]]:
    """Lines of ``name`` with includes resolved, each as ``(text, file, line)``."""
    expanded: list[tuple[str, str, int]] = []
    for number, line in enumerate(lines, start=first_line):
        match = _INCLUDE.match(line)
        if match is None:
            expanded.append((line, name, number))
            continue
        included = match.group(1)
        if included in stack:
            raise ShaderError(f"{name}:{number}: #include cycle {' -> '.join(stack + (included,))}")
        text = _read(root, included)
        expanded.extend(_expand(root, included, text.splitlines(), stack + (included,)))
    return expanded


@functools.lru_cache(maxsize=128)
def _cached_source(name: str, stage: str, defines: tuple[tuple[str, str], ...], root: str | None) -> ShaderSource:
    lines = _read(root, name).splitlines()
    if not lines or not lines[0].lstrip().startswith("#version"):
        raise ShaderError(f"{name}:1: the first line must be a #version directive")
    body = _expand(root, name, lines[1:], (name,), first_line=2)
    header = [lines[0], f"#define {stage} 1"]
    header += [f"#define {key} {value}" for key, value in defines]
    header.append("#line 2")
    text = "\n".join(header + [line for line, _, _ in body]) + "\n"
    return ShaderSource(name=name, stage=stage, text=text, origins=tuple((f, n) for _, f, n in body))


def shader_source(name: str, stage: str, defines: Mapping[str, object] | None = None,
                  root: str | os.PathLike | None = None) -> ShaderSource:
    """The preprocessed text of one stage of program file ``name`` (cached)."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    items = tuple(sorted((str(k), str(v)) for k, v in (defines or {}).items()))
    return _cached_source(name, stage, items, None if root is None else os.fspath(root))


@functools.lru_cache(maxsize=128)
def _stages(name: str, root: str | None) -> tuple[str, ...]:
    text = _read(root, name)
    present = tuple(stage for stage in STAGES if re.search(rf"defined\s*\(?\s*{stage}\b", text))
    if "VERTEX_SHADER" not in present or "FRAGMENT_SHADER" not in present:
        raise ShaderError(f"{name}: needs both VERTEX_SHADER and FRAGMENT_SHADER guards, found {present}")
    return present


def stages_of(name: str, root: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The stages a program file defines, judged by its ``defined <STAGE>`` guards (cached)."""
    return _stages(name, None if root is None else os.fspath(root))


def _locate(message: str, sources: Mapping[str, ShaderSource]) -> str:
    """Rewrite compiler locations in ``message`` as ``file:line``, section by section."""
    current = None
    out = []
    for line in message.splitlines():
        stripped = line.strip()
        for stage, source in sources.items():
            if stripped == _MODERNGL_STAGE_ARGUMENT[stage]:
                current = source
        if current is not None:
            for pattern in _LOCATIONS:
                match = pattern.search(line)
                if match:
                    file, number = current.origin(int(match.group(2)))
                    line = f"{line[:match.start()]}{file}:{number}: {line[match.end():].lstrip(': ')}"
                    break
        out.append(line)
    return "\n".join(out)


def load_program(ctx: moderngl.Context, name: str, defines: Mapping[str, object] | None = None,
                 root: str | os.PathLike | None = None) -> moderngl.Program:
    """Compile and link program file ``name`` on ``ctx``; raise ShaderError naming file:line on failure."""
    sources = {stage: shader_source(name, stage, defines, root) for stage in stages_of(name, root)}
    arguments = {_MODERNGL_STAGE_ARGUMENT[stage]: source.text for stage, source in sources.items()}
    try:
        return ctx.program(**arguments)
    except moderngl.Error as exc:
        raise ShaderError(f"{name}: {_locate(str(exc), sources)}") from exc
