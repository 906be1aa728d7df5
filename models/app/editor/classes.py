"""The editor's palette: one swatch (training id, name, colour) per class of a model's label contract.

Colours come from the palette the model was trained with (``palette_file``, recorded in its
:class:`~models.data.label_layout.LabelLayout`) and otherwise from
:func:`~models.data.palette.palette_colors`, the colours of the training sample grids. Names are
the shapes dataset's class names for ``dataset_mode: shapes`` and ``class k`` otherwise; the
don't-care id, when the layout has one, is ``unlabelled``.

Example:
    >>> from models.data.label_layout import LabelLayout
    >>> [(s.id, s.name, s.hex) for s in class_swatches(LabelLayout(2, contain_dontcare_label=True))]
    [(0, 'class 0', '#000000'), (1, 'class 1', '#800000'), (2, 'unlabelled', '#008000')]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from models.data.label_layout import LabelLayout
from models.data.palette import Palette, palette_colors
from models.data.shapes import SHAPES_CLASSES

__all__ = ["ClassSwatch", "class_swatches", "palette_file_text", "stored_palette"]


@dataclass(frozen=True)
class ClassSwatch:
    """One class as the editor shows it.

    Attributes:
        id: the training id (what the generator sees).
        name: what the palette calls it.
        rgb: its colour on the canvas.
    """

    id: int
    name: str
    rgb: tuple[int, int, int]

    @property
    def hex(self) -> str:
        """The colour as ``#rrggbb`` (the canvas brush's format)."""
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)

    @property
    def label(self) -> str:
        """``"<id> <name>"``, the entry of the class choosers."""
        return f"{self.id} {self.name}"


def _name(layout: LabelLayout, class_id: int) -> str:
    if class_id == layout.label_nc:
        return "unlabelled"
    if layout.dataset_mode == "shapes" and class_id < len(SHAPES_CLASSES):
        return SHAPES_CLASSES[class_id]
    return f"class {class_id}"


def class_swatches(layout: LabelLayout) -> list[ClassSwatch]:
    """The swatches of every training id of ``layout`` (classes, then the don't-care id).

    A recorded palette maps stored ids to colours; ids it does not list take the sample-grid
    colour. Distinct colours are what the canvas needs: a colour given to two ids is refused.

    Raises:
        ValueError: if two ids end up with one colour (a palette that reuses a default colour).

    Example:
        >>> layout = LabelLayout(2, dataset_mode="shapes", palette=((0, 90, 160, 240), (1, 60, 140, 50)))
        >>> [(s.label, s.rgb) for s in class_swatches(layout)]
        [('0 sky', (90, 160, 240)), ('1 ground', (60, 140, 50))]
    """
    defaults = palette_colors(layout.num_ids).tolist()
    recorded = layout.palette_map or {}
    swatches = []
    for class_id in range(layout.num_ids):
        stored = int(layout.to_stored(torch.tensor(class_id)))
        rgb = tuple(recorded.get(stored, defaults[class_id]))
        swatches.append(ClassSwatch(class_id, _name(layout, class_id), rgb))  # type: ignore[arg-type]
    if len({s.rgb for s in swatches}) != len(swatches):
        raise ValueError("the model's palette gives two classes one colour (or leaves a class to a default colour "
                         "another class uses); list every class in its palette file with its own colour")
    return swatches


def stored_palette(layout: LabelLayout, swatches: list[ClassSwatch]) -> Palette:
    """``{stored id: (r, g, b)}``: the palette that reads the editor's colour masks as a label file.

    Example:
        >>> layout = LabelLayout(2, contain_dontcare_label=True)
        >>> stored_palette(layout, class_swatches(layout))
        {0: (0, 0, 0), 1: (128, 0, 0), 255: (0, 128, 0)}
    """
    return {int(layout.to_stored(torch.tensor(s.id))): s.rgb for s in swatches}


def palette_file_text(palette: Palette) -> str:
    """The palette as a palette file (``id r g b`` lines) for ``infer.py --palette``.

    Example:
        >>> print(palette_file_text({0: (0, 0, 0), 1: (128, 0, 0)}), end="")
        0 0 0 0
        1 128 0 0
    """
    return "".join(f"{i} {r} {g} {b}\n" for i, (r, g, b) in sorted(palette.items()))
