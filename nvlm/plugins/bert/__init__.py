"""BERT's plugin: pretraining (MLM+NSP), SQuAD, --init sources, HF export, features."""
