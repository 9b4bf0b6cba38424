"""The Transformer encoder BERT and ELECTRA share: its backbone (embeddings + blocks), the
plugin base of encoder models (SQuAD, pretraining spec, evaluation), shard evaluation, and the
vocabulary padding rule. Neither model's package imports the other's for these."""
