"""Datasets that ship with pydl's dependencies (nothing is downloaded)."""
from .digits import load_digits
from . import transforms
from .dataset import DataLoader, Dataset, TensorDataset, default_collate
from .synthetic import first_token_task, planted_cluster_corpus, seq2seq_digits
from .text import CharTokenizer, WordTokenizer, load_pydoc_text, load_text, split_text

__all__ = ["load_digits"]
__all__ += ["Dataset", "TensorDataset", "DataLoader", "default_collate", "transforms",
            "CharTokenizer", "WordTokenizer", "load_pydoc_text", "load_text", "split_text",
            "seq2seq_digits", "planted_cluster_corpus", "first_token_task"]
