"""models/dit: DiT's state-dict layout loads strict=True; the forward matches DiT restated from it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from models.dit import DiT
from tests.condnorm.reference import layer_norm_last, rand, silu

HIDDEN, DEPTH, HEADS, PATCH, IN_CH, SIZE, CLASSES = 32, 2, 4, 2, 4, 8, 10


def _canonical_state_dict() -> dict[str, torch.Tensor]:
    """Keys and shapes of facebookresearch/DiT models.py DiT(learn_sigma=True, class_dropout_prob > 0)."""
    c, t, out = HIDDEN, (SIZE // PATCH) ** 2, 2 * IN_CH
    shapes = {
        "pos_embed": (1, t, c),
        "x_embedder.proj.weight": (c, IN_CH, PATCH, PATCH),
        "x_embedder.proj.bias": (c,),
        "t_embedder.mlp.0.weight": (c, 256),
        "t_embedder.mlp.0.bias": (c,),
        "t_embedder.mlp.2.weight": (c, c),
        "t_embedder.mlp.2.bias": (c,),
        "y_embedder.embedding_table.weight": (CLASSES + 1, c),
        "final_layer.linear.weight": (PATCH * PATCH * out, c),
        "final_layer.linear.bias": (PATCH * PATCH * out,),
        "final_layer.adaLN_modulation.1.weight": (2 * c, c),
        "final_layer.adaLN_modulation.1.bias": (2 * c,),
    }
    for i in range(DEPTH):
        shapes |= {
            f"blocks.{i}.attn.qkv.weight": (3 * c, c),
            f"blocks.{i}.attn.qkv.bias": (3 * c,),
            f"blocks.{i}.attn.proj.weight": (c, c),
            f"blocks.{i}.attn.proj.bias": (c,),
            f"blocks.{i}.mlp.fc1.weight": (4 * c, c),
            f"blocks.{i}.mlp.fc1.bias": (4 * c,),
            f"blocks.{i}.mlp.fc2.weight": (c, 4 * c),
            f"blocks.{i}.mlp.fc2.bias": (c,),
            f"blocks.{i}.adaLN_modulation.1.weight": (6 * c, c),
            f"blocks.{i}.adaLN_modulation.1.bias": (6 * c,),
        }
    return {
        k: rand(*s, seed=i) * (0.5 / math.sqrt(s[-1]) if len(s) > 1 else 0.1)
        for i, (k, s) in enumerate(sorted(shapes.items()))
    }


def _linear(sd, name, x):
    return x @ sd[name + ".weight"].T + sd[name + ".bias"]


def _dit_forward(sd, x, t, y):
    """DiT.forward restated: x_embedder + pos_embed; c = t_emb + y_emb; blocks; final layer; unpatchify."""
    n = x.shape[0]
    tok = F.conv2d(x, sd["x_embedder.proj.weight"], sd["x_embedder.proj.bias"], stride=PATCH)
    tok = tok.flatten(2).transpose(1, 2) + sd["pos_embed"]
    freqs = torch.exp(-math.log(10000) * torch.arange(128) / 128)
    temb = torch.cat([torch.cos(t[:, None] * freqs), torch.sin(t[:, None] * freqs)], dim=1)
    c = _linear(sd, "t_embedder.mlp.2", silu(_linear(sd, "t_embedder.mlp.0", temb)))
    c = c + sd["y_embedder.embedding_table.weight"][y]
    for i in range(DEPTH):
        b = f"blocks.{i}."
        mods = _linear(sd, b + "adaLN_modulation.1", silu(c)).chunk(6, dim=1)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (m.unsqueeze(1) for m in mods)
        h = layer_norm_last(tok, 1e-6) * (1 + scale_msa) + shift_msa
        qkv = _linear(sd, b + "attn.qkv", h).reshape(n, -1, 3, HEADS, HIDDEN // HEADS).permute(2, 0, 3, 1, 4)
        att = torch.softmax(qkv[0] @ qkv[1].transpose(-1, -2) / math.sqrt(HIDDEN // HEADS), dim=-1) @ qkv[2]
        tok = tok + gate_msa * _linear(sd, b + "attn.proj", att.transpose(1, 2).reshape(n, -1, HIDDEN))
        h = layer_norm_last(tok, 1e-6) * (1 + scale_mlp) + shift_mlp
        mlp = _linear(sd, b + "mlp.fc2", F.gelu(_linear(sd, b + "mlp.fc1", h), approximate="tanh"))
        tok = tok + gate_mlp * mlp
    shift, scale = _linear(sd, "final_layer.adaLN_modulation.1", silu(c)).chunk(2, dim=1)
    out = _linear(
        sd, "final_layer.linear", layer_norm_last(tok, 1e-6) * (1 + scale[:, None]) + shift[:, None]
    )
    g, p, ch = SIZE // PATCH, PATCH, 2 * IN_CH
    out = torch.einsum("nhwpqc->nchpwq", out.reshape(n, g, g, p, p, ch))
    return out.reshape(n, ch, g * p, g * p)


def _model() -> DiT:
    return DiT(
        input_size=SIZE,
        patch_size=PATCH,
        in_channels=IN_CH,
        hidden_size=HIDDEN,
        depth=DEPTH,
        num_heads=HEADS,
        num_classes=CLASSES,
    )


def test_dit_state_dict_loads_strict_and_forward_matches() -> None:
    sd = _canonical_state_dict()
    net = _model()
    assert set(net.state_dict()) == set(sd)
    net.load_state_dict(sd, strict=True)
    x, t, y = rand(2, IN_CH, SIZE, SIZE, seed=50), torch.tensor([3.0, 700.0]), torch.tensor([1, 9])
    with torch.no_grad():
        torch.testing.assert_close(net(x, t, y), _dit_forward(sd, x, t, y), atol=1e-4, rtol=1e-4)


def test_dit_outputs_zero_at_init_and_trains() -> None:
    net = _model()
    x, t, y = rand(2, IN_CH, SIZE, SIZE), torch.tensor([1.0, 2.0]), torch.tensor([0, 3])
    out = net(x, t, y)
    assert torch.equal(out, torch.zeros_like(out))
    out.square().sum().add(out.sum()).backward()
    assert net.final_layer.linear.weight.grad.abs().sum() > 0
