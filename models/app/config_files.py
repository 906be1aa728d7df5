"""Configs and checkpoint hyperparameters that must not blow up or run code when parsed.

- :func:`check_yaml_size` refuses YAML whose anchors and aliases expand to more than
  :data:`MAX_YAML_NODES` values (a 457-byte "billion laughs" file grows past 3 GB once a
  parser walks it), measured on the composed node graph before anything is built from it;
  :func:`install_bounded_yaml_loader` puts that check in front of jsonargparse's YAML loader
  (configs given with ``--config`` and YAML values on the command line).
- checkpoint hyperparameters that name a class outside this project are refused by
  :func:`models.weights.refuse_foreign_classes` (LightningCLI hands ``hyper_parameters._class_path``
  to jsonargparse, which imports the module before any type check).
"""

from __future__ import annotations

import os
from typing import Any

import yaml

__all__ = ["MAX_YAML_NODES", "ConfigRefusedError", "check_yaml_size", "install_bounded_yaml_loader"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_YAML_NODES = 100_000
"""Values a YAML config may expand to (the project's configs have about 100)."""


class ConfigRefusedError(ValueError):
    """A config or a checkpoint's hyperparameters were refused; the message names the source and the fix."""


def _expanded_size(node: yaml.Node, sizes: dict[int, float], limit: int) -> float:
    """Values under ``node`` with every alias expanded (each node measured once; a cycle is infinite)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    sizes[key] = float("inf")  # reached again while measuring itself: a recursive alias
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    total = 1.0
    for child in children:
        total += _expanded_size(child, sizes, limit)
        if total > limit:
            break
    sizes[key] = total
    return total


def check_yaml_size(text: str, source: str | os.PathLike = "", *, max_nodes: int = MAX_YAML_NODES) -> None:
    r"""Refuse YAML that expands (through anchors and aliases) to more than ``max_nodes`` values.

    Args:
        text: the YAML document.
        source: the file it came from, for the message ("a YAML value" when empty).
        max_nodes: the limit.

    Raises:
        ConfigRefusedError: (a ``ValueError``) naming ``source``, the limit and the fix.

    Example:
        >>> check_yaml_size("a: &x [1, 2]\nb: [*x, *x]")
        >>> bomb = "a: &a [x, x]\n" + "".join(f"{c}: &{c} [*{p}, *{p}]\n" for p, c in zip("abcd", "bcde"))
        >>> try:
        ...     check_yaml_size(bomb, "bomb.yaml", max_nodes=50)
        ... except ConfigRefusedError as err:
        ...     print(err)
        bomb.yaml: the YAML expands to more than 50 values through anchors and aliases (a "billion laughs" file?) — write the values out, or use fewer aliases
    """  # noqa: E501
    root = yaml.compose(text, Loader=_Loader)
    if root is not None and _expanded_size(root, {}, max_nodes) > max_nodes:
        raise ConfigRefusedError(f"{os.fspath(source) or 'a YAML value'}: the YAML expands to more than "
                                 f"{max_nodes} values through anchors and aliases (a \"billion laughs\" "
                                 "file?) — write the values out, or use fewer aliases")


def install_bounded_yaml_loader(max_nodes: int = MAX_YAML_NODES) -> None:
    """Make jsonargparse check every YAML text with :func:`check_yaml_size` before loading it.

    Idempotent; the loading itself stays jsonargparse's (its number and null rules).

    Example:
        >>> from jsonargparse import get_loader
        >>> install_bounded_yaml_loader()
        >>> get_loader("yaml")("lr: 1e-4")
        {'lr': 0.0001}
    """
    from jsonargparse import get_loader, set_loader

    load = get_loader("yaml")
    if getattr(load, "bounded", False):
        return

    def bounded_load(text: str, path: str | os.PathLike = "") -> Any:
        check_yaml_size(text, path, max_nodes=max_nodes)
        return load(text)

    bounded_load.bounded = True  # type: ignore[attr-defined]
    set_loader("yaml", bounded_load, exceptions=(yaml.YAMLError,))
