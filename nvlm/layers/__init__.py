"""Keras layers shared by the models: embeddings, attention, encoder block, layer norm,
masked-LM head."""

from nvlm.layers.activations import gelu
from nvlm.layers.embeddings import Embeddings
from nvlm.layers.layer_norm import LayerNorm
from nvlm.layers.masked_lm_head import MaskedLMHead
from nvlm.layers.multi_head_self_attention import MASK_NEGATIVE, MultiHeadSelfAttention
from nvlm.layers.transformer_encoder_block import TransformerEncoderBlock

__all__ = [
    "MASK_NEGATIVE",
    "Embeddings",
    "LayerNorm",
    "MaskedLMHead",
    "MultiHeadSelfAttention",
    "TransformerEncoderBlock",
    "gelu",
]
