"""The application layer: load trained models from files and run them (the Python inference API).

The CLI (``infer.py``) and the demos are thin shells over these classes; each carries the
label contract or the pre-/post-processing of its task, so the API and the CLI cannot disagree.

- :class:`MaskToImage`: SPADE / CLADE generators (Lightning ``.ckpt``, official ``*_net_G.pth``,
  ``.safetensors`` + JSON, ``.onnx``) → :meth:`MaskToImage.generate`.
- :class:`RegionStyles`: RAIN/SEAN generators → :meth:`RegionStyles.codes`, :meth:`RegionStyles.generate`.
- :class:`StyleTransferPipeline`: AdaIN / AdaCoN → :meth:`StyleTransferPipeline.transfer`.
"""

from .mask_to_image import MaskToImage
from .region_styles import RegionStyles
from .style_transfer import StyleTransferPipeline

__all__ = ["MaskToImage", "RegionStyles", "StyleTransferPipeline"]
