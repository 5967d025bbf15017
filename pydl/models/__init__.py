"""Model families built from pydl.nn."""
from .mlp import MLP
from .lstm import CharLM, SequenceClassifier
from .word2vec import Word2Vec

__all__ = ["MLP"]
__all__ += ["CharLM", "SequenceClassifier", "Word2Vec"]
from .gcn import GCN, GCNConv  # noqa: E402
from .dqn import QNetwork  # noqa: E402

__all__ += ["GCN", "GCNConv", "QNetwork"]
from .transformer import Seq2SeqTransformer  # noqa: E402
from .cnn import LeNet  # noqa: E402
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50, resnet_small  # noqa: E402,F401
from .gan import GAN  # noqa: E402
from .diffusion import DDPM  # noqa: E402
