"""Classifier stage: EfficientNet (timm) over the four labels, k-fold training, ensemble, evaluation."""
