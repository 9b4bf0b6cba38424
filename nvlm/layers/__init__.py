"""Keras layers shared by the models: embeddings, attention, encoder block, layer norm,
masked-LM head; Transformer-XL's relative attention and adaptive embedding / softmax."""

from nvlm.layers.activations import gelu
from nvlm.layers.adaptive_embedding import AdaptiveEmbedding
from nvlm.layers.adaptive_softmax import AdaptiveSoftmax
from nvlm.layers.embeddings import Embeddings
from nvlm.layers.layer_norm import LayerNorm
from nvlm.layers.masked_lm_head import MaskedLMHead
from nvlm.layers.multi_head_self_attention import MASK_NEGATIVE, MultiHeadSelfAttention
from nvlm.layers.relative_multi_head_attention import RelativeMultiHeadAttention, rel_shift
from nvlm.layers.relative_positional_embedding import RelativePositionalEmbedding
from nvlm.layers.relative_transformer_block import RelativeTransformerBlock
from nvlm.layers.transformer_encoder_block import TransformerEncoderBlock

__all__ = [
    "MASK_NEGATIVE",
    "AdaptiveEmbedding",
    "AdaptiveSoftmax",
    "Embeddings",
    "LayerNorm",
    "MaskedLMHead",
    "MultiHeadSelfAttention",
    "RelativeMultiHeadAttention",
    "RelativePositionalEmbedding",
    "RelativeTransformerBlock",
    "TransformerEncoderBlock",
    "gelu",
    "rel_shift",
]
