"""Model families built from pydl.nn."""
from .mlp import MLP
from .lstm import CharLM, SequenceClassifier
from .word2vec import Word2Vec

__all__ = ["MLP"]
__all__ += ["CharLM", "SequenceClassifier", "Word2Vec"]
