"""``train.py`` in a child process, for the crash- and signal-safety tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def spawn_train(root: Path, *args: str) -> subprocess.Popen:
    """``python train.py *args`` from the repository root, one intra-op thread, output appended to ``root/log.txt``."""
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    with open(root / "log.txt", "ab") as log:
        return subprocess.Popen([sys.executable, "train.py", *args], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def wait_for_marker(process: subprocess.Popen, marker: Path, never: str, timeout: float = 240) -> None:
    """Poll until a callback in ``process`` writes ``marker``.

    Fails with the run's log tail if the process exits first, and with ``never`` after ``timeout`` seconds.
    """
    log = marker.parent / "log.txt"
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, never
        time.sleep(0.05)
