"""``.ci/check_system``, which ``make demo`` and ``make test`` run first: it names the missing packages."""
import runpy
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "check_system"


@pytest.fixture
def check():
    return runpy.run_path(str(SCRIPT), run_name="check_system")


def test_demo_stops_and_names_the_missing_package(check, capsys, monkeypatch):
    monkeypatch.setitem(check["REQUIRED"], "libegl1", lambda: False)
    assert check["main"]("demo") == 1
    assert "apt-get install libegl1" in capsys.readouterr().err


def test_tests_only_warn_and_name_every_missing_package(check, capsys, monkeypatch):
    monkeypatch.setitem(check["REQUIRED"], "libegl1", lambda: False)
    monkeypatch.setitem(check["FOR_TESTS"], "xvfb", lambda: False)
    assert check["main"]("test") == 0
    err = capsys.readouterr().err
    assert "libegl1" in err and "xvfb" in err


def test_nothing_said_when_nothing_is_missing(check, capsys, monkeypatch):
    for table in ("REQUIRED", "FOR_TESTS"):
        for name in list(check[table]):
            monkeypatch.setitem(check[table], name, lambda: True)
    assert check["main"]("test") == 0 and check["main"]("demo") == 0
    assert capsys.readouterr().err == ""
