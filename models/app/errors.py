"""User errors as one line: ``error: <file or option>: <what> — <fix>``, exit status 2.

The command-line entry points (``infer.py``, ``train.py``) run through :func:`run_cli`: a
mistake in the input (a missing file, a bad option value, a label map that breaks the label
contract, a refused checkpoint) is printed as the one line its exception already carries,
without a stack trace; ``--traceback`` or ``CONDNORM_TRACEBACK=1`` shows the trace instead.
Ctrl-C exits with 130. Anything else is a bug and keeps its trace.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

__all__ = ["TRACEBACK_ENV", "USER_ERRORS", "one_line", "run_cli", "wants_traceback"]

TRACEBACK_ENV = "CONDNORM_TRACEBACK"
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, NotADirectoryError,
                                                IsADirectoryError, PermissionError, FloatingPointError)


def one_line(err: BaseException) -> str:
    r"""The message of ``err`` folded onto one line (multi-line reports joined with ``; ``).

    Example:
        >>> one_line(ValueError("2 bad label map(s):\n  a.png: ids [7]\n  b.png: ids [9]"))
        '2 bad label map(s): a.png: ids [7]; b.png: ids [9]'
    """
    if isinstance(err, OSError) and err.filename and err.strerror:  # raised by open() and friends
        text = f"{err.filename}: {err.strerror}"
    else:
        text = str(err) or type(err).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    head, rest = lines[0], lines[1:]
    return head + (" " + "; ".join(rest) if rest else "")


def wants_traceback(argv: Sequence[str]) -> bool:
    """Whether ``--traceback`` is in ``argv`` or ``CONDNORM_TRACEBACK`` is set (to anything but 0)."""
    return "--traceback" in argv or os.environ.get(TRACEBACK_ENV, "0") not in ("", "0")


def run_cli(main: Callable[[list[str]], int], argv: Sequence[str]) -> int:
    r"""Run ``main(argv)`` (``--traceback`` removed); user errors → one line on stderr and 2.

    Example:
        >>> def main(argv):
        ...     raise FileNotFoundError("--labels masks/ does not exist")
        >>> import contextlib, io
        >>> with contextlib.redirect_stderr(io.StringIO()) as err:
        ...     status = run_cli(main, [])
        >>> status, err.getvalue()
        (2, 'error: --labels masks/ does not exist\n')
    """
    traceback = wants_traceback(argv)
    args = [a for a in argv if a != "--traceback"]
    try:
        return main(args)
    except SystemExit as exit_:  # argparse has printed its usage line and error already
        return exit_.code if isinstance(exit_.code, int) else 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if traceback:
            raise
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 2
