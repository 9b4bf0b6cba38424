"""Models built from the shared layers in `nvlm.layers`, one package per model."""
