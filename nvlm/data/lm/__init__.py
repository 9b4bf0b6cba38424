"""Language-model data: Transformer-XL token streams, their vocab and verification."""
