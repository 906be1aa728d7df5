r"""``infer.py serve``: the interactive editor, a local web app over the Python API.

Examples:
    python infer.py serve --checkpoint runs/spade_shapes/version_0/checkpoints/last.ckpt
    python infer.py serve --checkpoint runs/rain_shapes/.../last.ckpt --port 7861
    python infer.py serve --vgg vgg_normalised.pth --decoder decoder.pth      # style transfer only

``--checkpoint`` (a mask-to-image or RAIN/SEAN generator) gives the tab "Mask to image" or
"Region styles"; ``--vgg/--decoder``, ``--style-checkpoint`` or ``--style-onnx`` the tab
"Style transfer". The page is served on 127.0.0.1 (this machine only) unless ``--host`` says
otherwise. Needs Gradio: ``pip install -e ".[app]"``.
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from ..editor import Workspace, load_mask_model
from ..style_transfer import StyleTransferPipeline
from .options import positive_int
from .spade import add_official_arguments, layout_from_args, official_options

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser``."""
    parser.add_argument("--checkpoint", help="a mask-to-image generator (Lightning .ckpt, official *_net_G.pth, "
                                             ".safetensors, .onnx), SPADE/CLADE/OASIS or RAIN/SEAN")
    parser.add_argument("--port", type=positive_int, default=7860, help="port of the web page")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: this machine only; 0.0.0.0 opens it to the network)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, …")
    style = parser.add_argument_group("style transfer (as infer.py adain)")
    style.add_argument("--vgg", help="AdaIN's vgg_normalised.pth (with --decoder)")
    style.add_argument("--decoder", help="AdaIN's decoder.pth or decoder_iter_*.pth.tar (with --vgg)")
    style.add_argument("--style-checkpoint", help="a Lightning checkpoint of StyleTransferModule (not with --vgg)")
    style.add_argument("--style-onnx", help="an exported style-transfer model, run with onnxruntime")
    add_official_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Load the models, then serve the editor until Ctrl-C; returns 0."""
    from ..editor.app import import_gradio, serve

    import_gradio()  # before loading any model: without Gradio, one line says how to install it
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    mask_model = None
    if args.checkpoint:
        mask_model = load_mask_model(args.checkpoint, device=device, layout=layout_from_args(args),
                                     **official_options(args))
    style = None
    if args.vgg or args.decoder or args.style_checkpoint or args.style_onnx:
        style = StyleTransferPipeline.load(checkpoint=args.style_checkpoint, vgg=args.vgg, decoder=args.decoder,
                                           onnx=args.style_onnx, device=device)
    with tempfile.TemporaryDirectory(prefix="condnorm-editor-") as results:
        ws = Workspace(mask_model, style, results)
        print(f"editor: http://{args.host}:{args.port} ({', '.join(ws.tabs)}); Ctrl-C stops it")
        try:
            serve(ws, host=args.host, port=args.port)  # returns on Ctrl-C, the server closed
        except KeyboardInterrupt:  # Ctrl-C while Gradio closes the server
            pass
    print("editor stopped")
    return 0
