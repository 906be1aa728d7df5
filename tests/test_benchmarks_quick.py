"""CI smoke: every benchmark script's ``--quick`` mode runs, and its paths agree with their baselines.

Quick mode uses tiny sizes and asserts correctness (each script checks its outputs against the
baseline), never time. The scripts run in-process (``main(argv)``), so nothing re-executes.
"""

from __future__ import annotations

import importlib

import pytest

SCRIPTS = ["adain_op", "spade_layer", "spade_generator", "adain_transfer", "modulated_conv", "normalizers"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_quick_mode_runs_and_reports_every_variant(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = importlib.import_module(f"benchmarks.{name}").main(["--quick"])
    out = capsys.readouterr().out
    assert rows and all(r.seconds > 0 and r.baseline > 0 for r in rows)
    assert "# malloc:" in out and "threads" in out  # the environment is printed
    assert "| subject | variant |" in out
    assert "target" not in out  # no timing claims in quick mode


def test_gpu_script_quick_mode(capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    rows = importlib.import_module("benchmarks.gpu").main(["--quick"])
    if torch.cuda.is_available():  # a lent GPU runs the tiny sizes there
        assert rows
    else:
        assert rows == []
        assert "no CUDA device" in capsys.readouterr().out


def test_gpu_script_code_runs_on_the_cpu_dry_run() -> None:
    rows = importlib.import_module("benchmarks.gpu").main(["--quick", "--dry-run-cpu"])
    assert {r.subject.split(" ×")[0] for r in rows} == {"SPADE-G train step 64²", "AdaIN transfer 32²"}
