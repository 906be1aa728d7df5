"""The Python API for mask-to-image synthesis: label files (or id tensors) in, images out.

:class:`MaskToImage` holds a generator (PyTorch or an exported ONNX / safetensors file) and
the label contract it was trained with (:class:`~models.data.label_layout.LabelLayout`), so
label files are read, id-shifted, checked and encoded exactly as training read them.
``infer.py spade`` is a thin shell over it.

Example:
    >>> import torch
    >>> from models.data.label_layout import LabelLayout
    >>> from models.generators import build_generator
    >>> layout = LabelLayout(3)
    >>> g = build_generator("spade", layout.semantic_nc, ngf=4, crop_size=32, norm="batch")
    >>> model = MaskToImage(g.eval(), layout)
    >>> images = model.generate(torch.randint(0, 3, (40, 50)))
    >>> images[0].shape                     # at the label map's own size, in [0, 1]
    torch.Size([3, 40, 50])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from condnorm import SemanticMap
from models.data.io import load_label, load_rgb
from models.data.label_layout import LabelLayout
from models.data.palette import Palette
from models.sdm import DDIMSampler
from models.sean import SEANGenerator
from models.spade import ConvEncoder

from .checkpoint import load_encoder, load_generator
from .export.architecture import load_exported_safetensors, read_description
from .export.runtime import OnnxDenoiser, OnnxGenerator, OnnxSession

__all__ = ["LabelInput", "MaskToImage", "check_finite_images", "postprocess", "resize_ids", "resize_image"]

LabelInput = Union[str, Path, Tensor]  # noqa: UP007 (runtime alias): a label file or (H, W) ids


def resize_ids(ids: Tensor, size: Sequence[int]) -> Tensor:
    """Nearest-neighbour resize of an ``(H, W)`` id map (no invented ids)."""
    if tuple(ids.shape[-2:]) == tuple(size):
        return ids
    return F.interpolate(ids[None, None].float(), size=tuple(size), mode="nearest")[0, 0].long()


def resize_image(image: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear (antialiased) resize of a ``(3, H, W)`` image in [0, 1] to ``size`` (no-op if it matches)."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image[None], size=tuple(size), mode="bilinear", align_corners=False,
                         antialias=True)[0].clamp(0, 1)


def postprocess(images: Tensor, sizes: Sequence[Sequence[int]] | None = None) -> list[Tensor]:
    """Generator output in [-1, 1] → list of ``(3, H, W)`` images in [0, 1] at ``sizes``."""
    images = images.float().clamp(-1, 1).add(1).div(2)
    return [image if sizes is None else resize_image(image, sizes[i]) for i, image in enumerate(images)]


def check_finite_images(images: Tensor, source: str) -> None:
    """Refuse to hand out NaN/Inf images (a diverged or damaged model); the error names ``source``."""
    if not bool(torch.isfinite(images).all()):
        raise FloatingPointError(f"{source}: the model produced NaN/Inf pixels; its weights are damaged or "
                                 "it diverged in training: use an earlier checkpoint")


class MaskToImage:
    """A mask-to-image generator (SPADE, CLADE, VAE variants, OASIS, SDM diffusion) with its label contract.

    An SDM checkpoint loads as a :class:`~models.sdm.DDIMSampler`: its ``steps``, ``guidance`` (SDM's
    ``s``) and ``eta`` are attributes of :attr:`generator`, and ``seed`` fixes the starting noise.

    Args:
        generator: a PyTorch generator (eval mode), an :class:`~models.app.export.runtime.OnnxGenerator`,
            or a :class:`~models.sdm.DDIMSampler` (around an SDM UNet or an ONNX denoiser).
        layout: the label contract the generator was trained with.
        encoder: the VAE style encoder (a ``ConvEncoder`` or an ONNX session), for ``style=``.
        device: where inputs go (the generator must already be there).
        source: what to call the model in messages (its file).
    """

    def __init__(self, generator: Any, layout: LabelLayout, *, encoder: ConvEncoder | OnnxSession | None = None,
                 device: torch.device | str = "cpu", source: str = "the model") -> None:
        if isinstance(generator, SEANGenerator):
            raise ValueError(f"{source} holds a RAIN (SEAN) generator, which needs region styles: use "
                             "RegionStyles (infer.py rain)")
        self.generator, self.layout, self.encoder = generator, layout, encoder
        self.device, self.source = torch.device(device), source

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path, *, device: torch.device | str = "cpu", layout: LabelLayout | None = None,
             encoder: str | Path | None = None, **official: Any) -> MaskToImage:
        """Load a generator file: Lightning ``.ckpt``, official ``*_net_G.pth``, ``.safetensors`` or ``.onnx``.

        Args:
            path: the file.
            device: where to run (PyTorch backends).
            layout: the label contract; required for official ``.pth`` files (they do not record
                it), and overrides what an ONNX/safetensors export recorded.
            encoder: the VAE encoder for ``style=``: an official ``*_net_E.pth``, or for ONNX the
                exported encoder (``infer.py export --part encoder``); Lightning checkpoints hold it.
            **official: ``crop_size``, ``aspect_ratio``, ``num_upsampling_layers`` of an official file.
        """
        path = Path(path)
        if path.suffix == ".onnx":
            session = OnnxSession(path)
            if session.metadata.get("task") == "sdm":
                denoiser = OnnxDenoiser(session)
                generator, layout = denoiser.sampler(), layout or denoiser.layout
            else:
                generator = OnnxGenerator(session)
                layout = layout or generator.layout
            enc = OnnxSession(encoder) if encoder else None
        elif path.suffix == ".safetensors":
            generator = load_exported_safetensors(path).to(device)
            recorded = read_description(path).get("label_layout")
            layout = layout or (LabelLayout.from_dict(recorded) if recorded else None)
            enc = load_exported_safetensors(encoder).to(device) if encoder else None
        else:
            generator, layout = load_generator(path, layout=layout, **official)
            generator = generator.to(device)
            enc = None
            if getattr(generator, "use_vae", False):
                enc = cls._torch_encoder(encoder or path, device)
        if layout is None:
            raise ValueError(f"{path} does not record its label layout: pass --label-nc (and "
                             "--contain-dontcare-label / --no-instance / --dataset-mode)")
        return cls(generator, layout, encoder=enc, device=device, source=str(path))

    @staticmethod
    def _torch_encoder(path: str | Path, device: torch.device | str) -> ConvEncoder | None:
        try:
            return load_encoder(path).to(device)
        except ValueError:  # no encoder in this file: style= will say so
            return None

    # ------------------------------------------------------------------ inputs
    @property
    def output_size(self) -> tuple[int, int]:
        """The generator's ``(H, W)``; label maps are resized to it and the images back."""
        return tuple(self.generator.output_size)

    @property
    def draws_noise(self) -> bool:
        """Whether the generator takes OASIS 3-D noise (drawn from ``seed``), in PyTorch or exported."""
        return getattr(self.generator, "noise_mode", None) is not None

    @property
    def stochastic(self) -> bool:
        """Whether different seeds give different images (OASIS noise, a VAE latent, SDM's starting noise)."""
        return self.draws_noise or self.use_vae or isinstance(self.generator, DDIMSampler)

    @property
    def use_vae(self) -> bool:
        """Whether the generator samples a latent style code (``style=`` / ``seed``)."""
        return bool(getattr(self.generator, "use_vae", False))

    def read_labels(self, label: LabelInput, palette: Palette | None = None) -> Tensor:
        """Training ids ``(H, W)`` of a label file or of stored ids given directly (:meth:`LabelLayout.read`)."""
        return self.layout.read(label, palette)

    @staticmethod
    def read_instance(instance: LabelInput) -> Tensor:
        """Instance ids ``(H, W)`` (long) of an instance-map file or of a tensor given directly."""
        return load_label(instance) if not isinstance(instance, Tensor) else instance.long()

    def encode(self, labels: Sequence[Tensor], instances: Sequence[Tensor] | None = None) -> SemanticMap:
        """Training id maps (+ instance maps) → the generator's input at :attr:`output_size`, as ids.

        A :class:`condnorm.SemanticMap` (ids plus the instance-edge channel): SPADE/CLADE generators
        and their ONNX graphs take ids directly, so no one-hot map is built.
        """
        size = self.output_size
        label = torch.stack([resize_ids(m, size) for m in labels]).to(self.device)
        instance = torch.stack([resize_ids(m, size) for m in instances]).to(self.device) if instances else None
        return self.layout.semantic_map(label, instance)

    @torch.inference_mode()
    def style_code(self, style: str | Path | Tensor) -> Tensor:
        """The VAE latent ``(1, z_dim)`` of a style image (a file, or ``(3, H, W)`` in [0, 1]): its mean."""
        if not self.use_vae:
            raise ValueError(f"--style needs a generator trained with use_vae=True ({style}); this "
                             "one maps labels only")
        if self.encoder is None:
            raise ValueError(f"{self.source}: no style encoder: pass the encoder file (--encoder; for ONNX the "
                             "one from infer.py export --part encoder)")
        image = (load_rgb(style) if not isinstance(style, Tensor) else style)[None].to(self.device) * 2 - 1
        return self.encoder(image)[0]  # (mu, logvar) from either backend

    # ------------------------------------------------------------------ generation
    @torch.inference_mode()
    def generate(self, labels: LabelInput | Sequence[LabelInput],
                 instances: LabelInput | Sequence[LabelInput] | None = None, *,
                 style: str | Path | Tensor | None = None, seed: int = 0, palette: Palette | None = None,
                 model_size: bool = False) -> list[Tensor]:
        """Generate one image per label map.

        Args:
            labels: label files or ``(H, W)`` id tensors (stored ids: the layout's id shift and
                don't-care mapping are applied), one or a sequence.
            instances: instance maps for generators with instance edges (files or tensors);
                None: the class boundaries stand in for them.
            style: a style image for VAE generators (its encoded mean is the latent).
            seed: seed of the latent draw of VAE generators without ``style``, and of the 3-D noise
                of OASIS-trained generators: image ``i`` draws with ``seed + i``, so an image does
                not depend on what it is batched with (same seed, same image).
            palette: overrides the recorded palette for colour masks.
            model_size: keep the generator's size instead of each label map's.

        Returns:
            ``(3, H, W)`` float images in [0, 1], at each label map's size.

        Raises:
            ValueError: for label maps that break the contract (the message names the file).
            FloatingPointError: if the model produced non-finite pixels.
        """
        single = isinstance(labels, (str, Path, Tensor))
        ids = [self.read_labels(x, palette) for x in ([labels] if single else labels)]
        inst = None
        if instances is not None:
            inst_list = [instances] if isinstance(instances, (str, Path, Tensor)) else list(instances)
            if len(inst_list) != len(ids):
                raise ValueError(f"got {len(inst_list)} instance map(s) for {len(ids)} label map(s)")
            inst = [self.read_instance(x) for x in inst_list]
        return self.generate_ids(ids, inst, style=style, seed=seed, model_size=model_size)

    @torch.inference_mode()
    def generate_ids(self, ids: Sequence[Tensor], instances: Sequence[Tensor] | None = None, *,
                     style: str | Path | Tensor | None = None, seed: int = 0,
                     model_size: bool = False) -> list[Tensor]:
        """:meth:`generate` from training ids already read through the label contract (:meth:`read_labels`).

        For callers that generate from the same masks several times (samples with other seeds):
        the files are read once. ``ids`` are ``(H, W)`` training ids; ``instances`` instance ids.
        """
        segmap = self.encode(ids, instances if self.layout.use_instance else None)
        if self.draws_noise:
            fake = self._with_noise(segmap, seed)
        elif isinstance(self.generator, DDIMSampler):
            fake = self._diffuse(segmap, seed)
        else:
            z = self._latents(len(ids), style, seed) if self.use_vae else None
            fake = self.generator(segmap, z)
        check_finite_images(fake, self.source)
        return postprocess(fake, None if model_size else [tuple(m.shape) for m in ids])

    def _with_noise(self, segmap: SemanticMap, seed: int) -> Tensor:
        """An OASIS generator on the dense map plus 3-D noise drawn with ``seed + i`` for image ``i``."""
        dense = segmap.to_dense(self.layout.semantic_nc, torch.float32)
        noise = [self.generator.draw(dense[i:i + 1], generator=torch.Generator().manual_seed(seed + i))
                 for i in range(dense.shape[0])]
        return self.generator(dense, noise=torch.cat(noise))

    def _diffuse(self, segmap: SemanticMap, seed: int) -> Tensor:
        """DDIM from the dense map, image ``i`` starting from noise drawn with ``seed + i``."""
        dense = segmap.to_dense(self.layout.semantic_nc, torch.float32)
        noise = torch.stack([torch.randn(3, *dense.shape[-2:], generator=torch.Generator().manual_seed(seed + i))
                             for i in range(dense.shape[0])])
        return self.generator(dense, noise.to(dense.device))

    def _latents(self, count: int, style: str | Path | Tensor | None, seed: int) -> Tensor:
        if style is not None:
            return self.style_code(style).expand(count, -1)
        draws = [torch.randn(self.generator.z_dim, generator=torch.Generator().manual_seed(seed + i))
                 for i in range(count)]
        return torch.stack(draws).to(self.device)

