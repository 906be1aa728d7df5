"""The interactive editor (``infer.py serve``): paint a mask, pick region styles, stylise — in the browser.

A local web app (Gradio, the optional extra ``pip install -e ".[app]"``) over the Python API:

- :mod:`.classes`: the class palette (names, colours) of a model's label contract;
- :mod:`.masks`: uploaded label files and painted canvases → training ids;
- :mod:`.actions`: what the buttons do (API calls, result files, one-line errors);
- :mod:`.workspace`: the models a session serves and which tabs they fill;
- :mod:`.app`: the Gradio page, a thin layout over the above (Gradio is imported only there).
"""

from .workspace import Workspace, load_mask_model

__all__ = ["Workspace", "load_mask_model"]
