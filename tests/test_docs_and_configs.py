"""The README's Python example runs, and every shipped config parses against the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import infer
import train
from models.data.label_layout import LabelLayout
from models.data.shapes import main as shapes_main
from models.data.shapes import write_shapes
from models.lit.mask_to_image import MaskToImageModule
from tests.models.networks.adain_official import save_official

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def _demo_files(root: Path) -> None:
    """What the README's examples read: the demo's checkpoint, new masks, AdaIN weights, two images."""
    layout = LabelLayout(6, use_instance=True, dataset_mode="shapes")
    module = MaskToImageModule(ngf=4, ndf=4, num_D=1, n_layers_D=2, norm_G="batch", lambda_vgg=0.0, lpips=False,
                               crop_size=32, aspect_ratio=1.0, **layout.to_dict())
    ckpt = root / "runs/spade_shapes/version_0/checkpoints/last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, ckpt)
    write_shapes(root / "new_masks", 2, images_dir=root / "photos", size=32)
    (root / "photos" / "shapes_1_000000.png").rename(root / "new_masks_photo.png")
    (root / "photos" / "shapes_1_000001.png").rename(root / "painting.png")
    save_official(root)


def test_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) >= 2
    _demo_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_readme_inference_commands_run_as_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mask-to-image commands after training the demo: new masks, then one image per mask."""
    _demo_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "README.md").read_text()
    masks = re.search(r"^python -m models\.data\.shapes (.*?)\s+#", text, re.M).group(1).split()
    command = re.search(r"^python infer\.py spade --checkpoint <ckpt> (.*?)\s+#", text, re.M).group(1).split()
    shapes_main(masks)
    ckpt = "runs/spade_shapes/version_0/checkpoints/last.ckpt"
    assert infer.cli(["spade", "--checkpoint", ckpt, *command]) == 0
    assert len(list(Path("out").glob("*.png"))) == len(list(Path("new_masks").glob("*.png"))) == 8


def test_readme_gives_the_ci_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    command = ci.split("# --- the README's test command ---\n")[1].strip()
    assert f"```bash\n{command}\n```" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_parses(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train.main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "class_path: models." in printed
