"""The ten model families, each a pydl.nn.Module built from pydl ops."""
from .cnn import LeNet
from .diffusion import DDPM
from .dqn import QNetwork
from .gan import GAN
from .gcn import GCN, GCNConv
from .lstm import CharLM, SequenceClassifier
from .mlp import MLP
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50, resnet_small
from .transformer import Seq2SeqTransformer
from .word2vec import Word2Vec

__all__ = ["MLP", "LeNet", "ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34", "resnet50",
           "resnet_small", "CharLM", "SequenceClassifier", "Word2Vec", "Seq2SeqTransformer", "GAN",
           "DDPM", "GCN", "GCNConv", "QNetwork"]
