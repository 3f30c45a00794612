"""The command line itself: help without torch, help texts without raw markup, one size syntax."""
import subprocess
import sys

import pytest

from immersions.render.cli import command_modules, main

# Commands whose help must not load torch (their options come from torch-free modules); the rest are listed
# so that a new command is a decision, not an accident.
LIGHT = ("auralise", "bench", "data", "demo", "dream", "gallery", "graph", "layout", "levels", "map", "optimize",
         "probe", "render", "steer", "train", "view")
HEAVY = ()


def _modules_after(argv: list[str]) -> set[str]:
    """Modules a fresh interpreter has imported after running the command line with ``argv``."""
    code = ("import sys\nfrom immersions.render.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    pass\nprint(' '.join(sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300,
                          check=True)
    return set(done.stderr.split())


def test_every_command_is_classified():
    assert sorted(LIGHT + HEAVY) == command_modules()


@pytest.mark.parametrize("argv", [["--help"], *[[name, "--help"] for name in LIGHT], ["steer", "/nope"]])
def test_help_loads_neither_torch_nor_opengl(argv):
    loaded = _modules_after(argv)
    assert not {"torch", "moderngl", "scipy", "sklearn", "numba"} & loaded


@pytest.mark.parametrize("name", ["", *command_modules()])
def test_help_texts_have_no_raw_markup(name, capsys):
    with pytest.raises(SystemExit) as done:
        main([name, "--help"] if name else ["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "usage: immersions" in text and "``" not in text


@pytest.mark.parametrize("command", ["render", "demo", "view", "optimize"])
def test_one_size_syntax_everywhere(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--size WxH" in capsys.readouterr().out


def test_version_is_looked_up_when_asked(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("immersions ")


def test_optimize_runs_on_one_thread_unless_told_and_says_why(capsys):
    from immersions.render.cli import build_parser

    assert build_parser("optimize").parse_args(["optimize", "--objective", "ar"]).threads == 1
    with pytest.raises(SystemExit):
        main(["optimize", "--help"])
    assert "default: 1: on a machine shared with other busy processes" in " ".join(capsys.readouterr().out.split())
