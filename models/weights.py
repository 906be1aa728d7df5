"""Weight and checkpoint files: read untrusted ones safely, write them atomically.

Every weight or checkpoint file a user names (a checkpoint to resume or to run, published
weights, a VGG state dict) is read by :func:`read_weights`: ``torch.load(weights_only=True)``,
which unpickles tensors and plain containers only and refuses every other object (a pickle
can name any function to call while loading), or ``safetensors`` for ``*.safetensors``.
:func:`atomic_save` writes a file so that a crash at any moment leaves either the complete
old file or the complete new one.
"""

from __future__ import annotations

import os
import pickle
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch

__all__ = ["ALLOWED_CLASS_NAMES", "WeightsFileError", "atomic_save", "atomic_write", "check_finite_weights",
           "non_finite_tensors", "read_checkpoint", "read_weights", "refuse_foreign_classes"]

ALLOWED_CLASS_NAMES = ("models.", "pytorch_lightning.cli.instantiate_module",
                       "lightning.pytorch.cli.instantiate_module")
"""What a checkpoint's hyperparameters may name: the project's classes (``models.…``) and the
function Lightning records as the instantiator of CLI-built modules."""

_CLASS_KEYS = ("_class_path", "class_path", "_instantiator")

_TORCH_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation",
                      "Re-running `torch.load`", "In PyTorch 2.6")


class WeightsFileError(ValueError):
    """A weight file was refused or could not be read; the message names the file and the fix."""


def _reason(err: BaseException) -> str:
    """The informative lines of torch's weights-only error (without its generic advice)."""
    lines = [line.strip() for line in str(err).splitlines()]
    kept = [line for line in lines if line and not line.startswith(_TORCH_BOILERPLATE)]
    return " ".join(kept).removeprefix("WeightsUnpickler error: ") or type(err).__name__


def read_weights(path: str | os.PathLike, *, map_location: Any = "cpu") -> Any:
    """Read a weight or checkpoint file without running code from it.

    ``*.safetensors`` files are read with safetensors; anything else with
    ``torch.load(path, weights_only=True)``, which accepts tensors, numbers, strings and
    lists / tuples / dicts of them (Lightning checkpoints of this project included).

    Args:
        path: the file.
        map_location: where to put the tensors (``torch.load``'s argument; the CPU by default).

    Returns:
        The file's content (a state dict, or a checkpoint dictionary).

    Raises:
        FileNotFoundError: if ``path`` is not a file.
        WeightsFileError: (a ``ValueError``) if the file holds other pickled objects (which could run
            code), is empty, truncated or not a PyTorch / safetensors file.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "w.pth")
        >>> torch.save({"weight": torch.ones(2)}, path)
        >>> read_weights(path)["weight"]
        tensor([1., 1.])
        >>> with open(path, "wb") as f:
        ...     _ = f.write(b"not a checkpoint")
        >>> read_weights(path)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        models.weights.WeightsFileError: ...w.pth: cannot be read: refused to unpickle it (Unsupported...
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist; check the path")
    if path.stat().st_size == 0:
        raise WeightsFileError(f"{path}: cannot be read: the file is empty (0 bytes), it was not written "
                               "completely; copy or download it again")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        device = map_location if isinstance(map_location, (str, torch.device)) else "cpu"
        try:
            return load_file(path, device=str(device))
        except (SafetensorError, OSError) as err:
            raise WeightsFileError(f"{path}: cannot be read as a safetensors file ({err}); copy or "
                                   "download it again") from err
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightsFileError(
            f"{path}: cannot be read: refused to unpickle it ({_reason(err)}). Weight files are read with "
            "torch.load(weights_only=True), which accepts only tensors and plain containers because "
            "any other pickled object can run code. If the file is damaged or not a PyTorch file, "
            "obtain it again; if it holds objects you trust, re-save just its state_dict() or convert "
            "it to .safetensors") from err
    except (RuntimeError, EOFError, OSError) as err:
        raise WeightsFileError(f"{path}: cannot be read: not a complete PyTorch file ({_reason(err)}); "
                               "it is probably truncated (an interrupted write or download): obtain it "
                               "again") from err


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` so that a crash leaves the old file or the new one, never a part.

    The bytes go to a hidden temporary file in the same folder, which is flushed and
    ``fsync``-ed, then renamed over ``path`` (``os.replace``, atomic on POSIX and Windows), and
    the folder is ``fsync``-ed so the rename survives a power cut. A kill during the write
    leaves ``.{name}.*.tmp`` behind and ``path`` untouched.

    Example:
        >>> import tempfile, os
        >>> path = atomic_save({"step": 3}, os.path.join(tempfile.mkdtemp(), "a", "last.ckpt"))
        >>> torch.load(path, weights_only=True), sorted(os.listdir(path.parent))
        ({'step': 3}, ['last.ckpt'])
    """
    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, sync it and rename it over ``path``.

    The mechanism of :func:`atomic_save`, for any writer (safetensors bytes, images).

    Example:
        >>> import tempfile, os
        >>> path = atomic_write(os.path.join(tempfile.mkdtemp(), "x.bin"), lambda f: f.write(b"ok"))
        >>> path.read_bytes()
        b'ok'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    # 0o666 minus the umask, like any new file (mkstemp would make it private).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # POSIX: persist the rename itself
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


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
        WeightsFileError: (a ``ValueError``) naming the file, the key and the class.

    Example:
        >>> refuse_foreign_classes({"_class_path": "models.lit.mask_to_image.MaskToImageModule"}, "a.ckpt")
        >>> try:
        ...     refuse_foreign_classes({"_class_path": "os.system"}, "evil.ckpt")
        ... except WeightsFileError as err:
        ...     print(err)
        evil.ckpt: hyper_parameters._class_path names 'os.system', which is not a class of this project (models.…); refused before importing it — resume only from checkpoints written by this project's train.py
    """  # noqa: E501
    for path, name in _class_names(hyper_parameters, "hyper_parameters"):
        if not (isinstance(name, str) and (name.startswith(ALLOWED_CLASS_NAMES[0])
                                            or name in ALLOWED_CLASS_NAMES[1:])):
            raise WeightsFileError(f"{os.fspath(source)}: {path} names {name!r}, which is not a class of "
                                     "this project (models.…); refused before importing it — resume only "
                                     "from checkpoints written by this project's train.py")


def non_finite_tensors(state_dict: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``state_dict`` that hold a NaN or an Inf.

    Example:
        >>> non_finite_tensors({"w": torch.ones(2), "b": torch.tensor([0.0, float("nan")]), "n": torch.ones(1).long()})
        ['b']
    """
    return [name for name, value in state_dict.items() if isinstance(value, torch.Tensor)
            and value.is_floating_point() and not bool(torch.isfinite(value).all())]


def check_finite_weights(state: Any, path: str | os.PathLike) -> None:
    """Raise :class:`WeightsFileError` naming the first tensors of ``state`` that hold NaN or Inf.

    A network with non-finite weights only produces NaN or black images, so such files are
    refused at load rather than producing them.

    Example:
        >>> check_finite_weights({"a": torch.ones(2), "b": torch.tensor([1.0, float("nan")])}, "g.pth")
        Traceback (most recent call last):
        ...
        models.weights.WeightsFileError: g.pth: 1 weight tensor(s) hold NaN or Inf values (b); the training run that wrote it diverged: use an earlier checkpoint
    """  # noqa: E501
    bad = non_finite_tensors(state) if isinstance(state, dict) else []
    if bad:
        listed = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise WeightsFileError(f"{path}: {len(bad)} weight tensor(s) hold NaN or Inf values ({listed}); the "
                               "training run that wrote it diverged: use an earlier checkpoint")


def read_checkpoint(path: str | os.PathLike, *, map_location: Any = "cpu") -> Any:
    """:func:`read_weights`, then refuse foreign class paths and non-finite weights.

    For a Lightning checkpoint (``hyper_parameters`` + ``state_dict``) the hyperparameters may
    only name classes of this project; every floating tensor (of ``state_dict``, or of a bare
    state dict) must be finite.

    Raises:
        WeightsFileError: naming the file and what was refused.
    """
    ckpt = read_weights(path, map_location=map_location)
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        refuse_foreign_classes(ckpt.get("hyper_parameters", {}), path)
        check_finite_weights(ckpt["state_dict"], path)
    else:
        check_finite_weights(ckpt, path)
    return ckpt
