"""The feature network: VGG with named layers and its geometry (``vgg``), its weight files
(``weights``), each network's input preprocessing (``preprocessing``), the paper's rescaled
network (``rescaled``) and ``load_backbone``, which picks among them by name (``loading``)."""

from .loading import load_backbone
from .vgg import (BACKBONES, BackboneError, BackboneInfo, BackboneNotice, UnknownLayerError, VGGFeatures,
                  WeightsError, check_backbone, skeleton)

__all__ = ["BACKBONES", "load_backbone", "BackboneError", "BackboneInfo", "BackboneNotice", "UnknownLayerError",
           "VGGFeatures", "WeightsError", "check_backbone", "skeleton"]
