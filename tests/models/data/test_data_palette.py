import json

import numpy as np
import pytest
import torch
from PIL import Image

from models.data.io import load_label
from models.data.palette import colorize_labels, load_palette, palette_colors, rgb_to_ids


def test_palette_colors_fixed_and_distinct():
    colours = palette_colors(256)
    assert colours.dtype == torch.uint8 and colours.shape == (256, 3)
    assert torch.unique(colours, dim=0).shape[0] == 256
    # bit-interleaved scheme: bit 3k+c of the id sets bit 7-k of channel c
    for i in (1, 2, 4, 8, 150, 255):
        expected = [sum(((i >> (3 * k + c)) & 1) << (7 - k) for k in range(8)) for c in range(3)]
        assert colours[i].tolist() == expected
    assert torch.equal(palette_colors(10), colours[:10])


def test_colorize_labels():
    ids = torch.tensor([[[0, 1], [2, 5]], [[5, 5], [3, 0]]])
    out = colorize_labels(ids, 6)
    assert out.shape == (2, 3, 2, 2) and out.dtype == torch.float32
    table = palette_colors(6).float() / 255
    for n in range(2):
        for y in range(2):
            for x in range(2):
                assert torch.equal(out[n, :, y, x], table[ids[n, y, x]])
    with pytest.raises(ValueError, match=r"ids must be in \[0, 5\), found \[5\]"):
        colorize_labels(ids, 5)
    with pytest.raises(ValueError, match="expected a 3-d tensor"):
        colorize_labels(ids[0], 6)


def test_load_palette_json_and_text(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"0": [0, 0, 0], "7": [128, 64, 128]}))
    assert load_palette(tmp_path / "p.json") == {0: (0, 0, 0), 7: (128, 64, 128)}
    (tmp_path / "p.txt").write_text("# id r g b\n\n0 0 0 0\n7, 128, 64, 128  # road\n")
    assert load_palette(tmp_path / "p.txt") == {0: (0, 0, 0), 7: (128, 64, 128)}


@pytest.mark.parametrize("text,match", [
    ("0 0 0 0\n1 2 3\n", r"p\.txt:2: expected 'id r g b', got '1 2 3'"),
    ("0 0 0 0\n1 0 0 0\n", r"p\.txt:2: colour \[0, 0, 0\] is already used by id 0"),
    ("0 0 0 0\n0 1 1 1\n", r"p\.txt:2: id 0 is listed twice"),
    ("0 0 0 300\n", r"p\.txt:1: colour \[0, 0, 300\] has a channel outside 0-255"),
    ("a 0 0 0\n", r"p\.txt:1: the id must be an integer"),
    ("0 x 0 0\n", r"p\.txt:1: colour .* must hold three integers"),
    ("# nothing\n", r"p\.txt: the palette file is empty"),
])
def test_load_palette_errors(tmp_path, text, match):
    (tmp_path / "p.txt").write_text(text)
    with pytest.raises(ValueError, match=match):
        load_palette(tmp_path / "p.txt")


def test_load_palette_json_errors(tmp_path):
    (tmp_path / "p.json").write_text('{"0": [0, 0]}')
    with pytest.raises(ValueError, match=r"p\.json: id '0': expected a colour \[r, g, b\], got \[0, 0\]"):
        load_palette(tmp_path / "p.json")
    (tmp_path / "p.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_palette(tmp_path / "p.json")
    with pytest.raises(FileNotFoundError, match=r"palette file .*missing\.json does not exist"):
        load_palette(tmp_path / "missing.json")


def test_rgb_to_ids_round_trip_all_input_kinds():
    torch.manual_seed(0)
    ids = torch.randint(0, 12, (9, 11))
    ids[0, 0], ids[-1, -1] = 0, 11
    colours = palette_colors(12)
    palette = {i: tuple(c) for i, c in enumerate(colours.tolist())}
    rgb = colours[ids].permute(2, 0, 1)
    assert torch.equal(rgb_to_ids(rgb, palette), ids)
    assert torch.equal(rgb_to_ids(rgb.float() / 255, palette), ids)
    assert torch.equal(rgb_to_ids(Image.fromarray(rgb.permute(1, 2, 0).numpy()), palette), ids)
    # colorize -> ids closes the loop
    painted = colorize_labels(ids[None], 12)[0]
    assert torch.equal(rgb_to_ids(painted, palette), ids)


def test_rgb_to_ids_lists_unknown_colours():
    rgb = torch.zeros(3, 4, 4, dtype=torch.uint8)
    rgb[0, :3] = 200  # 12 px of (200, 0, 0)
    rgb[:, 3, 0] = 17  # 1 px of (17, 17, 17)
    with pytest.raises(ValueError, match=r"m\.png: 2 colour\(s\) are not in the palette: "
                                         r"\[200, 0, 0\] \(12 px\), \[17, 17, 17\] \(1 px\); add them"):
        rgb_to_ids(rgb, {0: (0, 0, 0)}, name="m.png")
    with pytest.raises(ValueError, match=r"expected shape \(3, H, W\)"):
        rgb_to_ids(rgb[:2], {0: (0, 0, 0)})


def test_load_label_with_palette_file(tmp_path):
    ids = np.array([[0, 3, 3], [5, 0, 5]])
    palette = {0: (0, 0, 0), 3: (250, 170, 30), 5: (70, 130, 180)}
    lut = np.zeros((6, 3), dtype=np.uint8)
    for i, c in palette.items():
        lut[i] = c
    Image.fromarray(lut[ids]).save(tmp_path / "mask.png")
    (tmp_path / "p.txt").write_text("".join(f"{i} {r} {g} {b}\n" for i, (r, g, b) in palette.items()))
    assert load_label(tmp_path / "mask.png", load_palette(tmp_path / "p.txt")).tolist() == ids.tolist()
    Image.fromarray(ids.astype(np.uint8)).save(tmp_path / "ids.png")
    assert load_label(tmp_path / "ids.png").tolist() == ids.tolist()  # without a palette: ids as stored
