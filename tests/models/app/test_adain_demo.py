"""The controls grid: every column is produced at the content's size."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from models.app.demos.adain_controls import main


def test_controls_grid_has_nine_columns_and_one_row_per_content(tmp_path: Path) -> None:
    out = main(["--steps", "2", "--size", "32", "--out", str(tmp_path / "grid.png")])
    width, height = Image.open(out).size
    pad = 2
    assert (width, height) == (9 * (32 + pad) + pad, 3 * (32 + pad) + pad)
