"""Pretraining data: BERT and ELECTRA instances, masking, HDF5 shards and their reader."""
