import pytest
import torch
import torch.nn.functional as F

from models.data.transforms import PairedTransform


def _scene(height=40, width=52):
    """Label with an asymmetric layout; the image is white where label > 0, so it encodes the mask."""
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    label = torch.zeros(height, width, dtype=torch.long)
    label[:, : width // 3] = 3  # left band
    label[(yy - 25) ** 2 + (xx - 34) ** 2 <= 64] = 7  # disc right of centre
    label[5:12, 30:48] = 5  # box top right
    image = (label > 0).float().expand(3, -1, -1).clone()
    return image, label, label * 11 + 2


def _near_edge(label, width=1):
    diff = torch.zeros_like(label, dtype=torch.bool)
    diff[:, 1:] |= label[:, 1:] != label[:, :-1]
    diff[:, :-1] |= label[:, 1:] != label[:, :-1]
    diff[1:] |= label[1:] != label[:-1]
    diff[:-1] |= label[1:] != label[:-1]
    return F.max_pool2d(diff[None, None].float(), 2 * width + 1, 1, width)[0, 0].bool()


@pytest.mark.parametrize("preprocess,load_size", [("resize_and_crop", 60), ("resize_and_crop", 32),
                                                  ("scale_width_and_crop", 45), ("fixed", 0), ("none", 0)])
def test_label_instance_and_image_stay_aligned(preprocess, load_size):
    image, label, instance = _scene()
    transform = PairedTransform(preprocess, load_size=load_size, crop_size=32, aspect_ratio=1.0)
    torch.manual_seed(0)
    flipped_views = set()
    for _ in range(25):
        out_image, out_label, out_instance = transform(image, label, instance)
        assert out_image.shape[0] == 3 and out_label.shape == out_instance.shape == out_image.shape[1:]
        assert out_label.dtype == out_instance.dtype == torch.long
        assert set(out_label.unique().tolist()) <= {0, 3, 5, 7}  # nearest: no blended ids
        assert torch.equal(out_instance, out_label * 11 + 2)  # instance follows the label exactly
        mismatch = (out_image.mean(0) > 0.5) != (out_label > 0)
        # the image's edges sit on the label's edges (bicubic blur: within one pixel; on the
        # crop border the edge may lie just outside the crop)
        allowed = _near_edge(out_label)
        allowed[[0, -1]] = allowed[:, [0, -1]] = True
        assert not (mismatch & ~allowed).any()
        assert float(mismatch.float().mean()) < 0.08
        assert 0.0 <= float(out_image.min()) and float(out_image.max()) <= 1.0
        flipped_views.add(bool(out_label[:, 0].eq(3).any()))
    assert flipped_views == {True, False}  # flips happen (left band seen on both sides)


def test_output_sizes():
    image, label, _ = _scene(40, 52)
    assert PairedTransform("fixed", crop_size=32, aspect_ratio=2.0)(image, label)[0].shape == (3, 16, 32)
    out = PairedTransform("resize_and_crop", load_size=40, crop_size=32, aspect_ratio=2.0)(image, label)
    assert out[0].shape == (3, 16, 32) and out[2] is None
    scale = PairedTransform("scale_width_and_crop", load_size=26, crop_size=24)
    assert scale.resize_target(40, 52) == (24, 31) and scale.resize_target(80, 52) == (40, 26)
    assert PairedTransform("none").resize_target(40, 52) == (32, 64)
    assert PairedTransform("none").resize_target(10, 100) == (32, 96)
    assert PairedTransform("none")(image, label)[1].shape == (32, 64)


def test_eval_mode_is_deterministic_centre_crop():
    image, label, instance = _scene()
    transform = PairedTransform("scale_width_and_crop", load_size=52, crop_size=32, train=False)
    first = transform(image, label, instance)
    for _ in range(5):
        assert all(torch.equal(a, b) for a, b in zip(first, transform(image, label, instance)))
    resized = PairedTransform("fixed", crop_size=52, aspect_ratio=52 / 40, train=False)(image, label)[1]
    assert torch.equal(first[1], label[4:36, 10:42]) and torch.equal(resized, label)


def test_errors():
    with pytest.raises(ValueError, match="unknown preprocess 'crop'; choose one of resize_and_crop"):
        PairedTransform("crop")
    with pytest.raises(ValueError, match="needs load_size >= crop_size, got load_size=20 < crop_size=32"):
        PairedTransform("resize_and_crop", load_size=20, crop_size=32)
    with pytest.raises(ValueError, match="aspect_ratio > 0"):
        PairedTransform("fixed", aspect_ratio=0)
