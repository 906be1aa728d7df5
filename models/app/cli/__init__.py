"""Thin argparse front-ends of ``infer.py``: parse options, walk files, call :mod:`models.app`."""
