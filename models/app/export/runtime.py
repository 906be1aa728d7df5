"""Run exported ONNX files with onnxruntime behind the same call as the PyTorch networks.

The runners take and return torch tensors and read everything they need from the file's
metadata (:data:`~models.app.export.formats.METADATA_KEY`), so ``infer.py`` keeps one pre- and
post-processing path for both backends:

- :class:`OnnxGenerator` is called like a SPADE/CLADE generator, ``runner(segmap, z,
  generator=rng)``, and draws a VAE generator's ``z`` exactly as the generator does; for an
  OASIS-trained one it offers :meth:`~OnnxGenerator.draw` and ``runner(segmap, noise=…)`` like
  :class:`~models.oasis.OASISGenerator`;
- :class:`OnnxRainGenerator` is called like a SEAN generator with style codes, and draws the
  per-layer noise from a seeded ``torch.Generator`` exactly as the generator does;
- :class:`OnnxDenoiser` is an exported SDM denoiser ``(x_t, t, mask) → ε``; :meth:`OnnxDenoiser.sampler`
  puts the Python DDIM loop (:class:`~models.sdm.DDIMSampler`) around it;
- :class:`OnnxStyleTransfer` offers :meth:`~OnnxStyleTransfer.transfer` with the colour
  controls of :meth:`StyleTransfer.transfer` (one style per content).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from condnorm import SemanticMap
from condnorm._check import check_shape
from models.adain.style_transfer import PRESERVE_COLOR, color_postprocess, color_preprocess
from models.data.label_layout import LabelLayout
from models.oasis import draw_noise
from models.sdm import DDIMSampler, NoiseSchedule

from .formats import METADATA_KEY

__all__ = ["OnnxDenoiser", "OnnxGenerator", "OnnxRainGenerator", "OnnxSession", "OnnxStyleTransfer",
           "default_providers"]


def default_providers() -> list[str]:
    """CUDA then CPU when onnxruntime has the CUDA provider, else CPU only."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class OnnxSession:
    """An onnxruntime session that takes and returns torch tensors.

    Args:
        path: the ``.onnx`` file.
        providers: onnxruntime execution providers (default :func:`default_providers`).
        threads: intra-op threads (onnxruntime's default when None).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
    """

    def __init__(self, path: str | Path, *, providers: Sequence[str] | None = None,
                 threads: int | None = None) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file {path} does not exist")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.path = path
        providers = list(providers or default_providers())
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.metadata: dict[str, Any] = json.loads(
            self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY, "{}"))

    def __call__(self, *inputs: Tensor) -> list[Tensor]:
        """Run the graph on ``inputs`` (in the file's input order); outputs on the first input's device.

        Floating inputs are fed as float32 (the exported precision), integer ones as they are.
        """
        if len(inputs) != len(self.input_names):
            raise ValueError(f"{self.path.name}: expected {len(self.input_names)} input(s) "
                             f"{self.input_names}, got {len(inputs)}")
        feeds = {n: (t.float() if t.is_floating_point() else t).detach().cpu().contiguous().numpy()
                 for n, t in zip(self.input_names, inputs)}
        return [torch.from_numpy(o).to(inputs[0].device) for o in self.session.run(None, feeds)]

    def require_task(self, *tasks: str) -> None:
        """Raise ``ValueError`` unless the file was exported for one of ``tasks``."""
        task = self.metadata.get("task")
        if task not in tasks:
            raise ValueError(f"{self.path}: exported for task {task!r}, expected {' or '.join(tasks)}; "
                             f"export it with infer.py export --task {tasks[0]}")


class OnnxGenerator:
    """An exported SPADE/CLADE generator, called like :class:`~models.spade.SPADEGenerator`.

    Args:
        path: the ``.onnx`` file (``infer.py export --task spade``), or its open session.
        providers: onnxruntime execution providers (default :func:`default_providers`).
        threads: intra-op threads.

    Attributes:
        output_size: ``(H, W)`` the graph was exported for (the label maps are resized to it).
        use_vae: the graph takes a latent ``z`` besides the segmap.
        z_dim: size of ``z``.
        semantic_nc: channels of the one-hot map the generator was trained on.
        num_extra: 0/1 edge channels after the classes (an input of the graph when > 0).
        noise_mode: ``"pixel"`` or ``"region"`` for an OASIS-trained generator (its 3-D noise is an
            input of the graph, :attr:`noise_z_dim` channels), else None.
        layout: the label layout recorded at export (None if the export did not record it).
    """

    def __init__(self, path: str | Path | OnnxSession, *, providers: Sequence[str] | None = None,
                 threads: int | None = None) -> None:
        self.session = path if isinstance(path, OnnxSession) else OnnxSession(path, providers=providers,
                                                                              threads=threads)
        self.session.require_task("spade")
        meta = self.session.metadata
        self.output_size: tuple[int, int] = tuple(meta["output_size"])
        self.use_vae: bool = meta["use_vae"]
        self.z_dim: int = meta["z_dim"]
        self.semantic_nc: int = meta["semantic_nc"]
        self.num_extra: int = meta["num_extra"]
        noise = meta.get("noise") or {}
        self.noise_mode: str | None = noise.get("mode")
        self.noise_z_dim: int = noise.get("z_dim", 0)
        layout = meta.get("label_layout")
        self.layout = LabelLayout.from_dict(layout) if layout else None

    def draw(self, segmap: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """The OASIS noise map for a dense ``segmap``, drawn as :meth:`models.oasis.OASISGenerator.draw` does."""
        if self.noise_mode is None:
            raise ValueError(f"{self.session.path.name} takes no 3-D noise (it is not an OASIS-trained generator)")
        return draw_noise(segmap, z_dim=self.noise_z_dim, mode=self.noise_mode, generator=generator)

    def label_inputs(self, segmap: Tensor | SemanticMap) -> tuple[Tensor, ...]:
        """The graph's label inputs, ``(ids,)`` or ``(ids, edges)``, from any form the generator takes.

        Args:
            segmap: the one-hot map ``(N, semantic_nc, H, W)`` (the shared pre-processing's
                output), class ids ``(N, H, W)``, or a :class:`condnorm.SemanticMap`.

        Raises:
            ValueError: for a soft map (the graph takes hard labels), edge channels other than
                the graph's count or holding values other than 0 and 1.
        """
        if isinstance(segmap, SemanticMap):
            ids, extra = segmap.ids, segmap.extra
        elif segmap.dim() == 3 and not segmap.is_floating_point():
            ids, extra = segmap, None
        else:
            check_shape(segmap, ("N", "L", "H", "W"), f"{self.session.path.name} segmap",
                        {"L": self.semantic_nc})
            classes = self.semantic_nc - self.num_extra
            found = SemanticMap.from_dense(segmap[:, :classes])
            if found is None:
                raise ValueError(f"{self.session.path.name} takes hard label maps (one class per pixel), "
                                 "got a soft one; run soft maps with the PyTorch model (--checkpoint)")
            ids, extra = found.ids, segmap[:, classes:] if self.num_extra else None
        got = 0 if extra is None else extra.shape[1]
        if got != self.num_extra:
            raise ValueError(f"{self.session.path.name} takes {self.num_extra} edge channel(s) after the "
                             f"classes, got {got}: was it exported for another label layout?")
        if extra is None:
            return (ids.long(),)
        if not bool(((extra == 0) | (extra == 1)).all()):
            raise ValueError(f"{self.session.path.name}: the instance-edge channels must hold 0 and 1")
        return ids.long(), extra

    def __call__(self, segmap: Tensor | SemanticMap, z: Tensor | None = None, *,
                 generator: torch.Generator | None = None, noise: Tensor | None = None) -> Tensor:
        """The image ``(N, 3, H, W)`` in [-1, 1]; a VAE graph draws ``z`` from ``generator`` when None.

        ``segmap`` takes the forms :meth:`label_inputs` lists. An OASIS graph takes ``noise``
        ``(N, z_dim, H, W)``, drawn from ``generator`` when None (:meth:`draw`; needs the dense map).
        """
        labels = self.label_inputs(segmap)
        if self.noise_mode is not None:
            if noise is None:
                if not isinstance(segmap, Tensor) or segmap.dim() != 4:
                    raise ValueError("an OASIS graph draws its noise from the dense label map; pass noise=")
                noise = self.draw(segmap, generator=generator)
            return self.session(*labels, noise)[0]
        if noise is not None:
            raise ValueError("this exported generator takes no 3-D noise (it was not OASIS-trained)")
        if not self.use_vae:
            if z is not None:
                raise ValueError("this exported generator takes no z (it was not trained with use_vae)")
            return self.session(*labels)[0]
        if z is None:  # the same draw as SPADEGenerator.forward, so a seed gives the same images
            z = torch.randn(labels[0].shape[0], self.z_dim, generator=generator, device=labels[0].device)
        return self.session(*labels, z)[0]


class OnnxDenoiser:
    """An exported SDM denoiser (``infer.py export --task sdm``), called like :class:`~models.sdm.SDMUNet`.

    Args:
        path: the ``.onnx`` file, or its open session.
        providers: onnxruntime execution providers (default :func:`default_providers`).
        threads: intra-op threads.

    Attributes:
        output_size: ``(H, W)`` the graph was exported for.
        layout: the label layout recorded at export (None if the export did not record it).
        metadata: the export's description (schedule, timesteps, prediction, steps, guidance).
    """

    def __init__(self, path: str | Path | OnnxSession, *, providers: Sequence[str] | None = None,
                 threads: int | None = None) -> None:
        self.session = path if isinstance(path, OnnxSession) else OnnxSession(path, providers=providers,
                                                                              threads=threads)
        self.session.require_task("sdm")
        self.metadata = self.session.metadata
        self.output_size: tuple[int, int] = tuple(self.metadata["output_size"])
        layout = self.metadata.get("label_layout")
        self.layout = LabelLayout.from_dict(layout) if layout else None

    def __call__(self, x: Tensor, t: Tensor, mask: Tensor) -> Tensor:
        """``(x_t (N, 3, H, W), t (N,), mask (N, L, H, W)) → (N, 3, H, W)`` (ε or v), as float32 tensors."""
        return self.session(x, t.float(), mask)[0]

    def sampler(self) -> DDIMSampler:
        """The Python DDIM loop around this graph, with the schedule and defaults recorded at export."""
        m = self.metadata
        return DDIMSampler(self, NoiseSchedule(m["schedule"], m["timesteps"]), self.output_size,
                           prediction=m["prediction"], steps=m["steps"], guidance=m["guidance"])


class OnnxRainGenerator:
    """An exported RAIN (SEAN) generator, called like ``SEANGenerator(segmap, style_codes=…, noise=…)``.

    Attributes:
        output_size: ``(H, W)`` the graph was exported for.
        label_nc: L, the segmap's channels (one region code each).
        style_dim: length of a region's code.
        noise_shapes: ``(h, w)`` of each noise input, in draw order.
        layout: the label layout recorded at export (None if the export did not record it).
    """

    def __init__(self, path: str | Path, *, providers: Sequence[str] | None = None,
                 threads: int | None = None) -> None:
        self.session = OnnxSession(path, providers=providers, threads=threads)
        self.session.require_task("rain")
        meta = self.session.metadata
        self.output_size: tuple[int, int] = tuple(meta["output_size"])
        self.label_nc: int = meta["semantic_nc"]
        self.style_dim: int = meta["style_dim"]
        self.noise_shapes = [tuple(s) for s in meta["noise_shapes"]]
        layout = meta.get("label_layout")
        self.layout = LabelLayout.from_dict(layout) if layout else None

    def __call__(self, segmap: Tensor, *, style_codes: Tensor,
                 noise: torch.Generator | None = None) -> Tensor:
        """The image ``(N, 3, H, W)`` in [-1, 1]; the noise maps are drawn from ``noise`` in layer order."""
        n = segmap.shape[0]
        if noise is None:
            maps = [torch.randn(n, 1, h, w, dtype=segmap.dtype) for h, w in self.noise_shapes]
        else:  # RAIN's draw: on the generator's device, one map per layer, in call order
            maps = [torch.randn(n, 1, h, w, generator=noise, device=noise.device, dtype=segmap.dtype)
                    for h, w in self.noise_shapes]
        return self.session(segmap, style_codes, *maps)[0]


class OnnxStyleTransfer:
    """An exported :class:`~models.app.export.graphs.StyleTransferGraph`, called like ``StyleTransfer.transfer``.

    Args:
        path: the ``.onnx`` file (``infer.py export --task adain``).
        providers: onnxruntime execution providers (default :func:`default_providers`).
        threads: intra-op threads.
    """

    def __init__(self, path: str | Path, *, providers: Sequence[str] | None = None,
                 threads: int | None = None) -> None:
        self.session = OnnxSession(path, providers=providers, threads=threads)
        self.session.require_task("adain")

    def transfer(self, content: Tensor, style: Tensor | Sequence[Tensor], *, alpha: float = 1.0,
                 style_weights: Sequence[float] | None = None, preserve_color: bool | str | None = False,
                 mask: Tensor | None = None) -> Tensor:
        """Stylise ``content`` ``(N, 3, H, W)`` in [0, 1] with one style; see :meth:`StyleTransfer.transfer`.

        Raises:
            ValueError: for several styles, ``style_weights`` or ``mask`` (the exported graph
                takes one style per content; use the PyTorch model for those), α outside
                [0, 1] or an unknown colour mode.
        """
        styles = [style] if isinstance(style, Tensor) else list(style)
        if len(styles) != 1 or style_weights is not None or mask is not None:
            raise ValueError("an exported style-transfer graph takes one style per content: style "
                             "interpolation and masks need the PyTorch model (--checkpoint or "
                             "--vgg/--decoder)")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if preserve_color not in (False, None, *PRESERVE_COLOR):
            raise ValueError(f"preserve_color must be False, 'coral' or 'luminance', got {preserve_color!r}")
        content, styles, chroma = color_preprocess(content, styles, preserve_color)
        style = styles[0].expand(content.shape[0], -1, -1, -1)
        out = self.session(content, style, torch.tensor(alpha, dtype=torch.float32))[0]
        return color_postprocess(out, chroma)
