"""Model families built from pydl.nn."""
from .mlp import MLP
from .lstm import CharLM, SequenceClassifier

__all__ = ["MLP"]
__all__ += ["CharLM", "SequenceClassifier"]
