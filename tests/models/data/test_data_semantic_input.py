import pytest
import torch

from models.data.semantic_input import instance_edges, semantic_input, semantic_nc


def _edges_by_hand(instance):
    n, h, w = instance.shape
    out = torch.zeros(n, 1, h, w)
    for b in range(n):
        for y in range(h):
            for x in range(w):
                for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < h and 0 <= xx < w and instance[b, yy, xx] != instance[b, y, x]:
                        out[b, 0, y, x] = 1.0
    return out


def test_semantic_nc_matches_official_channel_counts():
    assert semantic_nc(150, True, False) == 151  # ADE20K
    assert semantic_nc(35, False, True) == 36  # Cityscapes
    assert semantic_nc(182, True, True) == 184  # COCO-Stuff
    with pytest.raises(ValueError, match="label_nc must be >= 1"):
        semantic_nc(0, False, False)


def test_instance_edges_vs_hand_computed():
    torch.manual_seed(0)
    instance = torch.randint(0, 3, (2, 5, 7))
    assert torch.equal(instance_edges(instance), _edges_by_hand(instance))
    assert instance_edges(torch.full((1, 4, 4), 9)).sum() == 0
    assert instance_edges(instance, dtype=torch.float64).dtype == torch.float64


def test_semantic_input_onehot_dontcare_and_edge_channel():
    torch.manual_seed(1)
    label_nc = 4
    label = torch.randint(0, label_nc + 1, (2, 6, 5))  # id 4 is the dontcare id
    instance = torch.randint(0, 4, (2, 6, 5))
    out = semantic_input(label, instance, label_nc=label_nc, contain_dontcare_label=True, use_instance=True)
    assert out.shape == (2, semantic_nc(label_nc, True, True), 6, 5) and out.dtype == torch.float32
    for c in range(label_nc + 1):
        assert torch.equal(out[:, c], (label == c).float())
    assert torch.equal(out[:, -1:], _edges_by_hand(instance))
    assert torch.equal(out[:, :-1].sum(1), torch.ones(2, 6, 5))
    plain = semantic_input(label.clamp(max=3), None, label_nc=4, contain_dontcare_label=False,
                           use_instance=False)
    assert plain.shape == (2, 4, 6, 5)


def test_semantic_input_errors():
    label = torch.tensor([[[0, 4]]])
    with pytest.raises(ValueError, match=r"label \(label_nc=4, contain_dontcare_label=False\): "
                                         r"ids must be in \[0, 4\), found \[4\]"):
        semantic_input(label, None, label_nc=4, contain_dontcare_label=False, use_instance=False)
    with pytest.raises(ValueError, match="use_instance=True needs an instance map"):
        semantic_input(label, None, label_nc=4, contain_dontcare_label=True, use_instance=True)
    with pytest.raises(ValueError, match=r"instance: expected shape \(N=1, H=1, W=2\)"):
        semantic_input(label, torch.zeros(1, 1, 3, dtype=torch.long), label_nc=4, contain_dontcare_label=True,
                       use_instance=True)
    with pytest.raises(ValueError, match=r"label: expected a 3-d tensor"):
        semantic_input(label[:, None], None, label_nc=5, contain_dontcare_label=False, use_instance=False)
    with pytest.raises(TypeError, match="integer tensor"):
        semantic_input(label.float(), None, label_nc=5, contain_dontcare_label=False, use_instance=False)
