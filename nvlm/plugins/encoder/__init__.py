"""What the BERT and ELECTRA plugins share: the encoder plugin base (SQuAD, shard evaluation)."""
