"""Model families built from pydl.nn."""
from .mlp import MLP
from .lstm import CharLM, SequenceClassifier
from .word2vec import Word2Vec

__all__ = ["MLP"]
__all__ += ["CharLM", "SequenceClassifier", "Word2Vec"]
from .gcn import GCN, GCNConv  # noqa: E402
from .dqn import QNetwork  # noqa: E402

__all__ += ["GCN", "GCNConv", "QNetwork"]
from .gan import GAN  # noqa: E402
from .diffusion import DDPM  # noqa: E402
