"""The test fixtures themselves: a server started for the tests never outlives the test process."""
import os
import subprocess
import sys
import time
from pathlib import Path

_CHILD = """
import os, subprocess, sys
sys.path.insert(0, {folder!r})
from conftest import _die_with_parent
server = subprocess.Popen(["sleep", "60"], preexec_fn=_die_with_parent)
print(server.pid, flush=True)
os.abort()
"""


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, reaped by init soon, counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_server_dies_when_the_test_process_aborts():
    """Like Qt aborting the run: the child of the aborted process (Xvfb in the display fixture) ends too."""
    child = subprocess.run([sys.executable, "-c", _CHILD.format(folder=os.path.dirname(__file__))],
                           capture_output=True, text=True, timeout=60)
    assert child.returncode != 0, "the child aborts"
    pid = int(child.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), f"process {pid} outlived its aborted parent"
