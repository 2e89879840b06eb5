"""What the losses compare: a layer's moments (``moments``), the style statistics and their
registry, with the content loss and total variation (``statistics``), statistics of whole
distributions (``distributions``), one style per region (``masks``), and the checked loss
configuration with its layers and weights (``config``)."""

from .config import CONTENT_LAYERS, PAPER, STYLE_LAYERS, LossConfig, style_layer_weights
from .moments import feature_covariance, feature_mean, gram_matrix, weighted_moments
from .statistics import STATISTICS, StyleStatistic, content_loss, get_statistic, total_variation

__all__ = ["CONTENT_LAYERS", "PAPER", "STYLE_LAYERS", "LossConfig", "style_layer_weights", "feature_covariance",
           "feature_mean", "gram_matrix", "weighted_moments", "STATISTICS", "StyleStatistic", "content_loss",
           "get_statistic", "total_variation"]
