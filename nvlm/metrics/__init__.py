"""Evaluation metrics: SQuAD exact match and F1 (`nvlm.metrics.squad`, official semantics)."""
