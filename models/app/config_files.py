"""Configs and checkpoint hyperparameters that must not blow up or run code when parsed.

- :func:`check_yaml_size` refuses YAML whose anchors and aliases expand to more than
  :data:`MAX_YAML_NODES` values (a 457-byte "billion laughs" file grows past 3 GB once a
  parser walks it), measured on the composed node graph before anything is built from it;
  :func:`install_bounded_yaml_loader` puts that check in front of jsonargparse's YAML loader
  (configs given with ``--config`` and YAML values on the command line).
- :func:`refuse_foreign_classes` refuses checkpoint hyperparameters that name a class outside
  this project: LightningCLI hands ``hyper_parameters._class_path`` (and any ``class_path``)
  to jsonargparse, which imports the module before any type check, so a checkpoint that loads
  with ``weights_only=True`` could still make ``train.py --ckpt_path`` run code on import.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import yaml

__all__ = ["ALLOWED_CLASS_NAMES", "MAX_YAML_NODES", "ConfigRefusedError", "check_yaml_size",
           "install_bounded_yaml_loader", "refuse_foreign_classes"]

MAX_YAML_NODES = 100_000
"""Values a YAML config may expand to (the project's configs have about 100)."""

ALLOWED_CLASS_NAMES = ("models.", "pytorch_lightning.cli.instantiate_module",
                       "lightning.pytorch.cli.instantiate_module")
"""What a checkpoint's hyperparameters may name: the project's classes (``models.…``) and the
function Lightning records as the instantiator of CLI-built modules."""

_CLASS_KEYS = ("_class_path", "class_path", "_instantiator")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


def _class_names(tree: Any, where: str) -> list[tuple[str, Any]]:
    """``(key path, value)`` of every class-naming key in nested dicts and lists."""
    found: list[tuple[str, Any]] = []
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            path = f"{where}.{key}"
            if key in _CLASS_KEYS:
                found.append((path, value))
            found += _class_names(value, path)
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            found += _class_names(value, f"{where}[{index}]")
    return found


def refuse_foreign_classes(hyper_parameters: Any, source: str | os.PathLike) -> None:
    """Refuse checkpoint hyperparameters naming a class outside :data:`ALLOWED_CLASS_NAMES`.

    Call it on ``checkpoint["hyper_parameters"]`` before handing them to jsonargparse (which
    imports any ``class_path`` it is given).

    Args:
        hyper_parameters: the checkpoint's ``hyper_parameters`` entry.
        source: the checkpoint file, for the message.

    Raises:
        ConfigRefusedError: (a ``ValueError``) naming the file, the key and the class.

    Example:
        >>> refuse_foreign_classes({"_class_path": "models.lit.mask_to_image.MaskToImageModule"}, "a.ckpt")
        >>> try:
        ...     refuse_foreign_classes({"_class_path": "os.system"}, "evil.ckpt")
        ... except ConfigRefusedError as err:
        ...     print(err)
        evil.ckpt: hyper_parameters._class_path names 'os.system', which is not a class of this project (models.…); refused before importing it — resume only from checkpoints written by this project's train.py
    """  # noqa: E501
    for path, name in _class_names(hyper_parameters, "hyper_parameters"):
        if not (isinstance(name, str) and (name.startswith(ALLOWED_CLASS_NAMES[0])
                                            or name in ALLOWED_CLASS_NAMES[1:])):
            raise ConfigRefusedError(f"{os.fspath(source)}: {path} names {name!r}, which is not a class of "
                                     "this project (models.…); refused before importing it — resume only "
                                     "from checkpoints written by this project's train.py")
