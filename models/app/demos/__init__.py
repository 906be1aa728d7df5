"""Demos that show what the trained models do, as image grids (run with ``python -m``)."""
