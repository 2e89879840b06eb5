"""Feed-forward texture and stylization networks (Ulyanov et al. 2016): the generator and its
weights files (``network``) and their training (``training``)."""

from .network import (STYLIZATION_STYLE_WEIGHT, GeneratorConfig, TextureNetwork, load_texture_network,
                      read_training, save_texture_network)
from .training import TrainingResult, train_stylization_network, train_texture_network

__all__ = ["STYLIZATION_STYLE_WEIGHT", "GeneratorConfig", "TextureNetwork", "load_texture_network",
           "read_training", "save_texture_network", "TrainingResult", "train_stylization_network",
           "train_texture_network"]
