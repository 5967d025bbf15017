"""Model families built from pydl.nn."""
from .mlp import MLP

__all__ = ["MLP"]
