"""Workstation converter: MLflow registry -> verified edge bundle."""

__version__ = "0.1.0"
