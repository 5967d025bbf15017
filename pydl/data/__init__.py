"""Datasets that ship with pydl's dependencies (nothing is downloaded)."""
from .digits import load_digits

__all__ = ["load_digits"]
