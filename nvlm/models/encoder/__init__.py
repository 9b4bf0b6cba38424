"""The Transformer encoder BERT and ELECTRA share: its backbone (embeddings + blocks), shard
evaluation, and the vocabulary padding rule (the plugin base they share is in
nvlm.plugins.encoder). Neither model's package imports the other's for these."""
