"""AdaIN networks: official layout and keys, strict loading, torchvision VGG-19 mapping."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import VGG19_Weights
from torchvision.models.vgg import cfgs, make_layers

from models.adain import AdaINDecoder, NormalisedVGG, StyleTransfer, encoder_state_dict
from models.adain.networks import load_weights_file
from tests.models.networks.adain_official import (
    DECODER_SHAPES,
    VGG_SHAPES,
    official_decoder,
    official_vgg,
    save_official,
)


def _shapes(state: dict) -> dict[int, tuple[int, ...]]:
    return {int(k.split(".")[0]): tuple(v.shape) for k, v in state.items() if k.endswith("weight")}


def test_reference_layer_lists_match_the_published_keys():
    vgg, dec = official_vgg(), official_decoder()
    assert len(vgg) == 53 and len(dec) == 29
    assert _shapes(vgg.state_dict()) == VGG_SHAPES and len(vgg.state_dict()) == 34
    assert _shapes(dec.state_dict()) == DECODER_SHAPES


def test_project_networks_keep_the_official_indices():
    enc, dec = NormalisedVGG(), AdaINDecoder()
    assert len(enc) == 31 and len(dec) == 29
    assert _shapes(enc.state_dict()) == {k: v for k, v in VGG_SHAPES.items() if k < 31}
    assert _shapes(dec.state_dict()) == DECODER_SHAPES
    assert all(isinstance(m, torch.nn.MaxPool2d) and m.ceil_mode for m in (enc[7], enc[14], enc[27]))
    assert all(isinstance(enc[i], torch.nn.ReflectionPad2d) for i in (1, 4, 8, 11, 15, 28))
    assert not any(p.requires_grad for p in enc.parameters())


def test_from_official_loads_files_and_encoder_matches_reference(tmp_path):
    vgg_path, dec_path, vgg, _ = save_official(tmp_path)
    net = StyleTransfer.from_official(vgg=vgg_path, decoder=dec_path)
    x = torch.rand(1, 3, 27, 35)
    taps = net.encoder(x)
    expected, h = [], x
    for i, layer in enumerate(vgg[:31]):
        h = layer(h)
        if i in (3, 10, 17, 30):
            expected.append(h)
    for got, want in zip(taps, expected):
        torch.testing.assert_close(got, want)
    assert taps[-1].shape[-2:] == (4, 5)  # ceil mode: ⌈27/8⌉, ⌈35/8⌉
    state = torch.load(dec_path, weights_only=True)
    net2 = StyleTransfer.from_official(vgg=torch.load(vgg_path, weights_only=True), decoder=state)
    torch.testing.assert_close(net2.decoder[28].weight, state["28.weight"])


def test_from_official_is_strict_on_what_matters(tmp_path):
    vgg_path, dec_path, vgg, dec = save_official(tmp_path)
    missing = {k: v for k, v in vgg.state_dict().items() if k != "29.bias"}
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*29\.bias"):
        StyleTransfer.from_official(vgg=missing, decoder=dec_path)
    extra = {**dec.state_dict(), "30.weight": torch.zeros(1)}
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\).*30\.weight"):
        StyleTransfer.from_official(vgg=vgg_path, decoder=extra)
    wrong = {**vgg.state_dict(), "2.weight": torch.zeros(64, 3, 1, 1)}
    with pytest.raises(RuntimeError, match=r"size mismatch for 2\.weight"):
        StyleTransfer.from_official(vgg=wrong, decoder=dec_path)
    stray = {**vgg.state_dict(), "60.weight": torch.zeros(1)}
    with pytest.raises(RuntimeError, match=r"Unexpected key\(s\).*60\.weight"):
        StyleTransfer.from_official(vgg=stray, decoder=dec_path)


def test_weight_files_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_weights_file(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"bad\.pth: cannot be read"):
        load_weights_file(bad)
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="expected a plain state dict"):
        load_weights_file(tmp_path / "list.pth")
    with pytest.raises(ValueError, match=r"keys a\.weight"):
        encoder_state_dict({"a.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="not an existing file and not a VGG19_Weights name"):
        encoder_state_dict("IMAGENET_NOPE")


def _torchvision_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    features = make_layers(cfgs["E"])
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    return state


def test_from_torchvision_vgg19_maps_convs_and_normalises_input(tmp_path):
    state = _torchvision_state()
    torch.save(state, tmp_path / "vgg19.pth")
    for source in (state, tmp_path / "vgg19.pth", str(tmp_path / "vgg19.pth")):
        net = StyleTransfer.from_torchvision_vgg19(weights=source)
        pairs = {0: 2, 2: 5, 5: 9, 7: 12, 10: 16, 12: 19, 14: 22, 16: 25, 19: 29}
        for tv, ours in pairs.items():
            assert torch.equal(net.encoder[ours].weight, state[f"features.{tv}.weight"])
            assert torch.equal(net.encoder[ours].bias, state[f"features.{tv}.bias"])
    x = torch.rand(2, 3, 5, 5)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(net.encoder[0](x), (x - mean) / std)


def test_from_torchvision_vgg19_random_init_and_missing_download(monkeypatch):
    net = StyleTransfer.from_torchvision_vgg19(weights=None)
    assert net.encoder[29].bias.abs().sum() == 0
    assert 0.5 < net.encoder[29].weight.std().item() * (512 * 9) ** 0.5 / 2**0.5 < 1.5  # Kaiming fan-out

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(VGG19_Weights, "get_state_dict", offline)
    with pytest.raises(RuntimeError, match=r"could not obtain.*network unreachable.*local path"):
        StyleTransfer.from_torchvision_vgg19(weights="DEFAULT")
    with pytest.raises(RuntimeError, match="could not obtain"):
        StyleTransfer.from_torchvision_vgg19(weights=VGG19_Weights.IMAGENET1K_V1)
