"""Datasets, DataModules and image I/O."""
