"""The editor's web page (Gradio): a thin layout over :mod:`~models.app.editor.actions`.

Gradio is an optional extra (``pip install -e ".[app]"``) and is imported only when the page is
built. Every handler reads its inputs, calls a function of ``actions`` (which calls the Python
API) and shows the result; a failure shows the CLI's one-line error in the tab's status box
instead of the result, never a stack trace.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from models.sean.codes import RegionCodes

from .actions import apply_reference, error_line, generate_image, parse_weights, render_regions, save_mask, stylise
from .classes import ClassSwatch, palette_file_text, stored_palette
from .masks import canvas_to_ids, ids_to_canvas, mask_summary, read_mask
from .workspace import Workspace

if TYPE_CHECKING:
    import gradio as gr

__all__ = ["GRADIO_MISSING", "build_app", "import_gradio", "serve"]

GRADIO_MISSING = 'the editor needs Gradio, an optional extra: pip install -e ".[app]"'
_ALL_REGIONS = "all regions"
_NO_COLOUR_CHANGE = "keep the style's colours"
_CSS = ("#m2i-result img, #rain-result img, #st-result img {image-rendering: pixelated; height: 100%; width: auto;"
        " max-width: 100%; object-fit: contain}")  # small images scaled up to the box, sharp


def import_gradio() -> Any:
    """The gradio module, or a ValueError (the CLI prints it as one line) telling how to install it."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local tool: no calls home
    try:
        import gradio
    except ImportError:
        raise ValueError(GRADIO_MISSING) from None
    return gradio


def _reporting(fn: Callable[..., tuple], outputs: int) -> Callable[..., tuple]:
    """``fn`` returns ``outputs`` values and a status line; on an error: no change, and the error's one line."""
    gr = import_gradio()

    @functools.wraps(fn)
    def run(*args: Any) -> tuple:
        try:
            return fn(*args)
        except Exception as err:  # every error is shown as a line, never a trace in the page
            return (*[gr.skip()] * outputs, error_line(err))

    return run


def _legend(swatches: list[ClassSwatch]) -> str:
    chips = "".join(f'<span style="display:inline-block;margin:2px 8px 2px 0"><span style="display:inline-block;'
                    f'width:14px;height:14px;vertical-align:middle;border:1px solid #888;background:{s.hex}">'
                    f"</span> {s.label}</span>" for s in swatches)
    return f"<div>{chips}</div>"


def _canvas_ids(value: dict | None, swatches: list[ClassSwatch]) -> torch.Tensor:
    if not value or value.get("composite") is None:
        raise ValueError("the canvas is empty: paint a mask or upload one")
    return canvas_to_ids(np.asarray(value["composite"]), swatches)


def _editor_value(ids: torch.Tensor, swatches: list[ClassSwatch]) -> dict:
    canvas = ids_to_canvas(ids, swatches)
    return {"background": canvas, "layers": [], "composite": canvas}


def _status(prefix: str) -> Any:
    """The tab's status line (rendered where the tab places it): what happened, or the error."""
    return import_gradio().Textbox(label="Status", interactive=False, render=False, elem_id=f"{prefix}-status")


def _mask_panel(ws: Workspace, prefix: str, status: Any) -> Any:
    """The canvas with the class palette, fill and upload (reporting to ``status``); returns the canvas."""
    gr = import_gradio()
    swatches = ws.swatches
    layout = ws.mask_model.layout
    blank = torch.zeros(ws.canvas_size, dtype=torch.long)
    canvas = gr.ImageEditor(_editor_value(blank, swatches), type="numpy", image_mode="RGBA", format="png",
                            label="Mask (paint with the class colours)", sources=(), transforms=(), layers=False,
                            brush=gr.Brush(colors=[s.hex for s in swatches], default_color=swatches[0].hex,
                                           color_mode="fixed"),
                            eraser=gr.Eraser(), canvas_size=ws.canvas_size[::-1], elem_id=f"{prefix}-canvas")
    gr.HTML(_legend(swatches), label="Classes")
    with gr.Row():
        fill_class = gr.Dropdown([s.label for s in swatches], value=swatches[0].label, label="Fill with class")
        fill = gr.Button("Fill canvas", elem_id=f"{prefix}-fill")
    upload = gr.File(label="Upload a mask (label PNG of ids, or a colour mask in these colours)",
                     file_types=["image"], elem_id=f"{prefix}-upload")
    palette_path = ws.folder.path("palette", ".txt")
    palette_path.parent.mkdir(parents=True, exist_ok=True)
    palette_path.write_text(palette_file_text(stored_palette(layout, swatches)))
    gr.File(str(palette_path), label="Palette file (infer.py --palette)", interactive=False)

    def filled(label: str) -> tuple:
        class_id = next(s.id for s in swatches if s.label == label)
        return _editor_value(torch.full(ws.canvas_size, class_id, dtype=torch.long), swatches), f"filled with {label}"

    def uploaded(path: str | None) -> tuple:
        if path is None:
            return gr.skip(), ""
        ids = read_mask(path, layout, swatches)
        return _editor_value(ids, swatches), f"read {mask_summary(ids, swatches)} from {Path(path).name}"

    fill.click(_reporting(filled, 1), fill_class, [canvas, status])
    upload.upload(_reporting(uploaded, 1), upload, [canvas, status])
    return canvas


def _result_column(prefix: str, label: str) -> tuple[Any, Any, Any]:
    gr = import_gradio()
    image = gr.Image(label=label, type="filepath", format="png", interactive=False, height=360,
                     elem_id=f"{prefix}-result")
    caption = gr.Markdown(elem_id=f"{prefix}-caption")
    download = gr.File(label="Download", interactive=False, elem_id=f"{prefix}-download")
    return image, caption, download


def _mask_to_image_tab(ws: Workspace) -> None:
    gr = import_gradio()
    model, swatches = ws.mask_model, ws.swatches
    status = _status("m2i")
    with gr.Row():
        with gr.Column():
            canvas = _mask_panel(ws, "m2i", status)
        with gr.Column():
            seed = gr.Number(0, precision=0, label="Seed", elem_id="m2i-seed")
            style = gr.File(label="Style image (VAE models)", file_types=["image"],
                            visible=model.use_vae, elem_id="m2i-style")
            with gr.Row():
                generate = gr.Button("Generate", variant="primary", elem_id="m2i-generate")
                new_sample = gr.Button("New sample", visible=ws.samples, elem_id="m2i-new-sample")
            status.render()
            image, caption, download = _result_column("m2i", "Generated image")
            mask_download = gr.File(label="The mask (label PNG of ids, for infer.py spade --labels)",
                                    interactive=False, elem_id="m2i-mask-download")

    def generated(value: dict | None, seed_value: float, style_path: str | None) -> tuple:
        ids = _canvas_ids(value, swatches)
        result = generate_image(model, ids, seed=int(seed_value), folder=ws.folder, style=style_path)
        mask = save_mask(ids, model.layout, ws.folder)
        return str(result.path), result.caption, str(result.path), str(mask), ""

    outputs = [image, caption, download, mask_download, status]
    generate.click(_reporting(generated, 4), [canvas, seed, style], outputs)
    new_sample.click(lambda: random.randrange(2**31), None, seed).then(
        _reporting(generated, 4), [canvas, seed, style], outputs)


def _region_styles_tab(ws: Workspace) -> None:
    gr = import_gradio()
    model, swatches = ws.mask_model, ws.swatches
    status = _status("rain")
    with gr.Row():
        with gr.Column():
            canvas = _mask_panel(ws, "rain", status)
        with gr.Column():
            codes = gr.State(RegionCodes.empty(model.label_nc, model.style_dim))
            reference = gr.File(label="Reference image", file_types=["image"], elem_id="rain-reference")
            reference_mask = gr.File(label="Its mask (default: the canvas)", file_types=["image"],
                                     elem_id="rain-reference-mask")
            region = gr.Dropdown([_ALL_REGIONS, *(s.label for s in swatches[:model.label_nc])], value=_ALL_REGIONS,
                                 label="Take the style of", elem_id="rain-region")
            apply = gr.Button("Apply the reference's style", elem_id="rain-apply")
            summary = gr.Markdown("no region styled yet: regions keep the zero code", elem_id="rain-summary")
            codes_upload = gr.File(label="Upload region codes (.safetensors)", height=120,
                                   elem_id="rain-codes-upload")
            seed = gr.Number(0, precision=0, label="Seed (the RAIN noise)", elem_id="rain-seed")
            generate = gr.Button("Generate", variant="primary", elem_id="rain-generate")
            status.render()
            image, caption, download = _result_column("rain", "Generated image")
            codes_download = gr.File(label="Region codes (.safetensors)", interactive=False,
                                     elem_id="rain-codes-download")

    def describe(current: RegionCodes) -> str:
        styled = [s.label for s in swatches[:model.label_nc] if bool(current.present[s.id])]
        return f"styled regions: {', '.join(styled)}" if styled else "no region styled yet"

    def applied(current: RegionCodes, value: dict | None, ref: str | None, ref_mask: str | None,
                choice: str) -> tuple:
        if ref is None:
            raise ValueError("choose a reference image first")
        mask = read_mask(ref_mask, model.layout, swatches) if ref_mask else _canvas_ids(value, swatches)
        regions = None if choice == _ALL_REGIONS else [int(choice.split()[0])]
        mixed = apply_reference(model, current, ref, mask, regions)
        return mixed, describe(mixed), f"applied {Path(ref).name} to {choice}"

    def loaded(path: str | None) -> tuple:
        if path is None:
            return gr.skip(), gr.skip(), ""
        loaded_codes = RegionCodes.load(path).check_fits(model.label_nc, model.style_dim, Path(path).name)
        return loaded_codes, describe(loaded_codes), f"loaded the codes of {Path(path).name}"

    def generated(current: RegionCodes, value: dict | None, seed_value: float) -> tuple:
        result = render_regions(model, _canvas_ids(value, swatches), current, seed=int(seed_value),
                                folder=ws.folder)
        saved = current.save(ws.folder.path("codes", ".safetensors"))
        return str(result.path), result.caption, str(result.path), str(saved), ""

    apply.click(_reporting(applied, 2), [codes, canvas, reference, reference_mask, region], [codes, summary, status])
    codes_upload.upload(_reporting(loaded, 2), codes_upload, [codes, summary, status])
    generate.click(_reporting(generated, 4), [codes, canvas, seed],
                   [image, caption, download, codes_download, status])


def _style_transfer_tab(ws: Workspace) -> None:
    gr = import_gradio()
    pipe = ws.style_transfer
    with gr.Row():
        with gr.Column():
            content = gr.File(label="Content image", file_types=["image"], elem_id="st-content")
            styles = gr.File(label="Style image(s)", file_count="multiple", file_types=["image"], elem_id="st-styles")
            previews = gr.Gallery(label="Content and styles", columns=4, height=180, interactive=False)
            weights = gr.Textbox(label="Style weights (one per style, e.g. 0.3 0.7; empty: equal)",
                                 elem_id="st-weights")
            alpha = gr.Slider(0.0, 1.0, 1.0, step=0.05, label="Style strength α", elem_id="st-alpha")
            colour = gr.Radio([_NO_COLOUR_CHANGE, "coral", "luminance"], value=_NO_COLOUR_CHANGE,
                              label="Preserve the content's colours", elem_id="st-colour")
            mask = gr.File(label="Mask (white: first style, black: second)", file_types=["image"], height=120,
                           elem_id="st-mask")
            with gr.Row():
                content_size = gr.Number(512, precision=0, label="Content size (shorter side, 0: keep)",
                                         elem_id="st-content-size")
                style_size = gr.Number(512, precision=0, label="Style size (0: keep)", elem_id="st-style-size")
            run = gr.Button("Stylise", variant="primary", elem_id="st-run")
        with gr.Column():
            status = gr.Textbox(label="Status", interactive=False, elem_id="st-status")
            image, caption, download = _result_column("st", "Stylised image")

    def shown(content_path: str | None, style_paths: list[str] | None) -> list[str]:
        return [p for p in [content_path, *(style_paths or [])] if p]

    def stylised(content_path: str | None, style_paths: list[str] | None, weights_text: str, alpha_value: float,
                 colour_mode: str, mask_path: str | None, content_px: float, style_px: float) -> tuple:
        if content_path is None:
            raise ValueError("--content: upload a content image")
        result = stylise(pipe, content_path, style_paths or [], folder=ws.folder, alpha=float(alpha_value),
                         style_weights=parse_weights(weights_text or ""),
                         preserve_color=None if colour_mode == _NO_COLOUR_CHANGE else colour_mode,
                         mask=mask_path, content_size=int(content_px), style_size=int(style_px))
        return str(result.path), result.caption, str(result.path), ""

    content.change(shown, [content, styles], previews)
    styles.change(shown, [content, styles], previews)
    run.click(_reporting(stylised, 3), [content, styles, weights, alpha, colour, mask, content_size, style_size],
              [image, caption, download, status])


def build_app(ws: Workspace) -> gr.Blocks:
    """The editor's page for ``ws``: one tab per loaded model (:attr:`Workspace.tabs`)."""
    gr = import_gradio()
    builders = {"Mask to image": _mask_to_image_tab, "Region styles": _region_styles_tab,
                "Style transfer": _style_transfer_tab}
    with gr.Blocks(title="condnorm editor", analytics_enabled=False) as demo:
        gr.Markdown("## condnorm editor")
        for name in ws.tabs:
            with gr.Tab(name, id=name.lower().replace(" ", "-")):
                builders[name](ws)
    return demo


def serve(ws: Workspace, *, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> gr.Blocks:
    """Build the page and serve it on ``host:port`` (loopback unless told otherwise).

    With ``block`` this returns when the server stops (Ctrl-C); without, at once (tests: call
    ``.close()`` on the returned app to stop it).
    """
    demo = build_app(ws)
    demo.queue(default_concurrency_limit=1)  # one generation at a time: the model is shared
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, quiet=not block,
                show_error=False, ssr_mode=False, allowed_paths=[str(ws.folder.root)], footer_links=[], css=_CSS)
    return demo
