"""Task adapters shared by model plugins (SQuAD question answering)."""
