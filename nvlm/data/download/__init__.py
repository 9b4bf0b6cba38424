"""Dataset downloads with checksums (SQuAD, WikiText, Wikipedia), offline copies."""
