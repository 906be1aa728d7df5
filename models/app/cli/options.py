"""argparse value types that refuse bad values at parse time (before any work starts)."""

from __future__ import annotations

import argparse
import math

from models.data.io import OUTPUT_EXTENSIONS

__all__ = ["finite_float", "image_ext", "non_negative_float", "positive_int", "unit_float"]


def image_ext(text: str) -> str:
    """An output image type (``png``, ``.jpg`` …), lower case without the dot.

    Example:
        >>> image_ext(".PNG")
        'png'
        >>> image_ext("gif")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: choose one of png, jpg, jpeg, bmp, webp, tif, tiff; got 'gif'
    """
    ext = text.lower().lstrip(".")
    if ext not in OUTPUT_EXTENSIONS:
        raise argparse.ArgumentTypeError(f"choose one of {', '.join(OUTPUT_EXTENSIONS)}; got {text!r}")
    return ext


def positive_int(text: str) -> int:
    """An integer >= 1 (batch sizes, sizes, counts).

    Example:
        >>> positive_int("4")
        4
        >>> positive_int("-1")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: must be an integer >= 1, got -1
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def finite_float(text: str) -> float:
    """A finite float (``nan`` and ``inf`` refused).

    Example:
        >>> finite_float("nan")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: must be a finite number, got 'nan'
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite float >= 0 (weights).

    Example:
        >>> non_negative_float("0.3")
        0.3
    """
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def unit_float(text: str) -> float:
    """A finite float in [0, 1] (strengths such as AdaIN's alpha).

    Example:
        >>> unit_float("1.5")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: must be in [0, 1], got 1.5
    """
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value
