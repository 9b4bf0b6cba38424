"""ELECTRA's plugin: replaced-token-detection pretraining, SQuAD (joint beam head), --init sources, HF export."""
