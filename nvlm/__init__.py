"""nvlm: BERT, ELECTRA and Transformer-XL on TensorFlow 2 / Keras 3, from one CPU to many GPUs."""

__version__ = "0.1.0"
