"""Transformer-XL's plugin: LM pretraining, perplexity, --init sources, inference (next words, scoring)."""
