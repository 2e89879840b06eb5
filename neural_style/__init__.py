"""Neural style transfer and texture synthesis (Gatys et al. 2015) with VGG features.

    >>> from neural_style import load_backbone, load_image, synthesize
    >>> net = load_backbone("auto")
    >>> result = synthesize(net, content=load_image("images/chelsea.png", 256),
    ...                     style=load_image("images/great_wave.jpg", 256))
    >>> result.save("results/cat.png")
"""

from .backbones import BackboneInfo, VGGFeatures
from .images import load_image, read_metadata, save_image
from .loading import load_backbone
from .synthesis import SynthesisResult, StepInfo, style_distance, synthesize

__all__ = ["BackboneInfo", "VGGFeatures", "load_backbone", "load_image", "read_metadata", "save_image",
           "SynthesisResult", "StepInfo", "style_distance", "synthesize"]
__version__ = "0.1.0"
