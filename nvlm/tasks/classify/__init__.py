"""Sequence classification and regression for BERT and ELECTRA (GLUE and labelled files)."""
