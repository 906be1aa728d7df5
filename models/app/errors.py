"""One-line errors for the command-line tools (``train.py``, ``infer.py``).

A user error (a bad config value, a missing dataset folder, a refused checkpoint …) is reported
as one line on stderr, ``error: <file or option>: <what> — <fix>``, and the process exits with
status 2; the stack trace is printed only when asked for with ``--traceback`` or the environment
variable ``CONDNORM_TRACEBACK=1``. Errors that are not the user's (bugs) keep their traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["TRACEBACK_ENV", "TRACEBACK_FLAG", "USER_ERRORS", "one_line", "parser_error", "report_errors",
           "split_traceback_flag"]

T = TypeVar("T")

TRACEBACK_FLAG = "--traceback"
TRACEBACK_ENV = "CONDNORM_TRACEBACK"
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, argparse.ArgumentError)
"""Exceptions that report a problem with the user's input (``ValueError`` covers the project's
``WeightsFileError``, ``ImageReadError`` and the refused-config errors)."""
EXIT_USER_ERROR = 2
EXIT_FAILED = 1


def split_traceback_flag(argv: Sequence[str]) -> tuple[bool, list[str]]:
    """Remove ``--traceback`` from ``argv``; say whether it or ``CONDNORM_TRACEBACK=1`` asks for traces.

    Example:
        >>> split_traceback_flag(["fit", "--traceback", "--config", "a.yaml"])[1]
        ['fit', '--config', 'a.yaml']
    """
    rest = [arg for arg in argv if arg != TRACEBACK_FLAG]
    return len(rest) != len(argv) or os.environ.get(TRACEBACK_ENV, "") == "1", rest


_OS_FIXES = {FileNotFoundError: " — check the path", NotADirectoryError: " — check the path",
             IsADirectoryError: " — check the path", PermissionError: " — check its permissions"}
_UNION_WRAPPER = "Does not validate against any of the Union subtypes"
_PARSER_FIX = "fix it in the config or on the command line (--print_config shows the accepted keys)"


def parser_error(message: str, fix: str = _PARSER_FIX) -> str:
    """A parser message as ``<option>: <what> — <fix>``, jsonargparse's nested class errors condensed.

    jsonargparse reports a bad value of a ``class_path`` argument as a tree (the union of types
    tried, each one's error, the given value); this keeps the option's full name and the reason.

    Args:
        message: the parser's error message.
        fix: what to do about it (the end of the line).

    Example:
        >>> parser_error('''Parser key "data":
        ...   Does not validate against any of the Union subtypes
        ...   Errors:
        ...     - Problem with given class_path 'models.data.Shapes':
        ...         Parser key "batch_size":
        ...           Expected a <class 'int'>. Got value: four
        ...     - Expected a <class 'NoneType'>
        ...   Given value type: <class 'dict'>''')
        "data.init_args.batch_size: Expected a <class 'int'>. Got value: four (models.data.Shapes) — fix it in the config or on the command line (--print_config shows the accepted keys)"
        >>> parser_error('Parser key "config": File does not exist: a.yaml', fix="check the path")
        'config: File does not exist: a.yaml — check the path'
    """  # noqa: E501
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    problem = next((i for i, line in enumerate(lines) if line.startswith("- Problem with given class_path")),
                   None)
    outer = re.match(r'Parser key "([^"]+)":', lines[0]) if lines else None
    if outer is None:
        return f"{' '.join(lines)} — {fix}"
    if problem is None:
        return f"{outer.group(1)}: {' '.join(lines)[outer.end():].strip()} — {fix}"
    class_path = lines[problem].split("'")[1]
    keys, reason = [outer.group(1), "init_args"], []
    for line in lines[problem + 1:]:
        if line.startswith("- "):
            break
        key = re.fullmatch(r'Parser key "([^"]+)":', line)
        if key:
            keys.append(key.group(1))
        else:
            reason.append(line)
    return f"{'.'.join(keys)}: {' '.join(reason)} ({class_path}) — {fix}"


def one_line(err: BaseException) -> str:
    r"""The ``error: …`` line for ``err``: its message on one line, OS errors as ``<file>: <reason>``.

    Example:
        >>> one_line(ValueError("a.png: label ids [7] are outside [0, 5)\n  set label_nc to 8"))
        'error: a.png: label ids [7] are outside [0, 5) set label_nc to 8'
        >>> one_line(FileNotFoundError(2, "No such file or directory", "data/train"))
        'error: data/train: no such file or directory — check the path'
        >>> one_line(OSError(28, "No space left on device", "runs/last.ckpt"))
        'error: runs/last.ckpt: no space left on device'
    """
    # jsonargparse wraps an error raised while building a class_path value in a ValueError listing
    # every type it tried; the error that matters is the one it wraps.
    while str(err).startswith(_UNION_WRAPPER) and isinstance(err.__cause__ or err.__context__, Exception):
        err = err.__cause__ or err.__context__
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        fix = _OS_FIXES.get(type(err), "")
        message = f"{err.filename}: {err.strerror[:1].lower()}{err.strerror[1:]}{fix}"
    elif isinstance(err, argparse.ArgumentError):
        message = parser_error(str(err.message))
    else:
        message = str(err) or type(err).__name__
    return "error: " + " ".join(line.strip() for line in message.splitlines() if line.strip())


def report_errors(run: Callable[[list[str]], T], argv: Sequence[str], *,
                  user_errors: tuple[type[BaseException], ...] = USER_ERRORS,
                  failures: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``run(argv)``; turn a user error into one line on stderr and exit status 2.

    ``--traceback`` is removed from ``argv`` first; with it (or ``CONDNORM_TRACEBACK=1``) errors
    propagate with their stack trace. ``failures`` are reported the same way with exit status 1
    (e.g. training stopped by a non-finite loss: a clear message, but not a user error).

    Args:
        run: the tool's entry point, given the arguments without ``--traceback``.
        argv: the command-line arguments.
        user_errors: exception types reported with exit status 2.
        failures: exception types reported with exit status 1.

    Returns:
        What ``run`` returns.

    Raises:
        SystemExit: with status 2 (user error) or 1 (listed failure) after printing the line.

    Example:
        >>> def run(argv):
        ...     raise FileNotFoundError(2, "No such file or directory", argv[0])
        >>> try:  # prints "error: data/train: no such file or directory — check the path" on stderr
        ...     report_errors(run, ["data/train"])
        ... except SystemExit as stop:
        ...     print(stop.code)
        2
    """
    show_traceback, args = split_traceback_flag(argv)
    try:
        return run(args)
    except (*user_errors, *failures) as err:
        if show_traceback:
            raise
        print(one_line(err), file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR if isinstance(err, user_errors) else EXIT_FAILED) from None
