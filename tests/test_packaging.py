"""Packaging: every library the package imports is declared, and the demo's outputs stay out of git."""
import ast
import re
import shutil
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("cpc", "layout", "render", "shaders")
# Optional libraries whose distribution is named otherwise than their import, for when they are not installed.
DISTRIBUTIONS = {"umap": "umap-learn"}


def imported_top_level_names() -> set[str]:
    """Top-level names of every absolute import in the package's sources (inside functions too)."""
    names = set()
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"immersions", "__future__"}


def normalized(name: str) -> str:
    """A distribution name as package indexes compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def setup_py_requirements() -> list[str]:
    """install_requires and every extra's requirements, read from setup.py's text (not the installed copy)."""
    for node in ast.walk(ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            extras = ast.literal_eval(keywords["extras_require"])
            return ast.literal_eval(keywords["install_requires"]) + [r for group in extras.values() for r in group]
    raise AssertionError("setup.py has no setup(...) call")


def test_every_imported_library_is_declared_in_setup_py():
    declared = {normalized(re.match(r"[A-Za-z0-9_.-]+", requirement).group())
                for requirement in setup_py_requirements()}
    distributions = packages_distributions()
    undeclared = {}
    for name in imported_top_level_names():
        # An optional library that is not installed here is known by its import name only.
        candidates = {normalized(d) for d in distributions.get(name, [DISTRIBUTIONS.get(name, name)])}
        if not candidates & declared:
            undeclared[name] = sorted(candidates)
    assert not undeclared, f"imported but not in setup.py (install_requires or an extra): {undeclared}"


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_the_demos_outputs_are_ignored_by_git():
    for name in ("immersions-demo.mp4", "immersions-demo.npz", "immersions-demo.activations.npz",
                 "immersions-demo.png", "immersions-demo.wav"):
        assert subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT).returncode == 0, name
