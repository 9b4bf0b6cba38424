"""Token + absolute position + token type embeddings (BERT, ELECTRA)."""

from __future__ import annotations

import keras
from keras import ops

from nvlm.layers.dropout import Dropout
from nvlm.layers.layer_norm import LayerNorm


@keras.saving.register_keras_serializable(package="nvlm")
class Embeddings(keras.layers.Layer):
    """Sum of word, absolute position and token type embeddings, then LayerNorm and dropout.

    The layout is BERT's (Devlin et al. 2018, section 3): one learned vector per word piece,
    per position (up to `max_position`) and per segment, summed, normalised and dropped out.
    ELECTRA (Clark et al. 2020, section 3.2) shares a smaller embedding between generator and
    discriminator: with `embedding_size != hidden_size` the normalised embedding is projected
    to `hidden_size` by a dense layer (`projection`), as ELECTRA's `embeddings_project`.

    The word embedding matrix is exposed as `word_embeddings.embeddings` so that a masked-LM
    head can tie its output projection to it.

    Args:
        vocab_size: number of word pieces (rows of the word embedding matrix).
        hidden_size: width of the output.
        max_position: longest sequence the position table covers.
        type_vocab_size: number of segment ids (2 for BERT sentence pairs).
        embedding_size: width of the embedding tables; `None` means `hidden_size`.
        dropout: dropout rate applied after the LayerNorm.
        layer_norm_eps: LayerNorm epsilon (1e-12 in BERT).
        initializer_range: standard deviation of the truncated normal initialiser.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:
    >>> layer = Embeddings(vocab_size=100, hidden_size=16, max_position=32)
    >>> ids = keras.ops.ones((2, 8), dtype="int32")
    >>> tuple(layer(ids, keras.ops.zeros_like(ids)).shape)
    (2, 8, 16)
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        max_position: int = 512,
        type_vocab_size: int = 2,
        embedding_size: int | None = None,
        dropout: float = 0.0,
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_position = max_position
        self.type_vocab_size = type_vocab_size
        self.embedding_size = embedding_size
        self.dropout = dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range

        width = embedding_size or hidden_size
        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        self.word_embeddings = keras.layers.Embedding(
            vocab_size,
            width,
            embeddings_initializer=init,
            dtype=self.dtype_policy,
            name="word_embeddings",
        )
        self.token_type_embeddings = keras.layers.Embedding(
            type_vocab_size,
            width,
            embeddings_initializer=init,
            dtype=self.dtype_policy,
            name="token_type_embeddings",
        )
        self.norm = LayerNorm(epsilon=layer_norm_eps, dtype=self.dtype_policy, name="norm")
        self.dropout_layer = Dropout(dropout, dtype=self.dtype_policy)
        self.projection = None
        if width != hidden_size:
            self.projection = keras.layers.Dense(
                hidden_size, kernel_initializer=init, dtype=self.dtype_policy, name="projection"
            )

    def build(self, input_shape=None) -> None:
        width = self.embedding_size or self.hidden_size
        self.word_embeddings.build((None, None))
        self.token_type_embeddings.build((None, None))
        self.position_embeddings = self.add_weight(
            shape=(self.max_position, width),
            initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_range),
            name="position_embeddings",
        )
        self.norm.build((None, None, width))
        if self.projection is not None:
            self.projection.build((None, None, width))
        self.built = True

    def call(self, input_ids, segment_ids=None, training=None):
        seq_len = ops.shape(input_ids)[1]
        x = self.word_embeddings(input_ids)
        # The position table is sliced, not gathered: positions are always 0..T-1.
        positions = ops.cast(self.position_embeddings[:seq_len], self.compute_dtype)
        x = x + positions[None]
        if segment_ids is not None:
            x = x + self.token_type_embeddings(segment_ids)
        else:
            x = x + ops.cast(self.token_type_embeddings.embeddings[0], self.compute_dtype)
        x = self.dropout_layer(self.norm(x), training=training)
        if self.projection is not None:
            x = self.projection(x)
        return x

    def compute_output_shape(self, input_ids_shape, segment_ids_shape=None):
        return (*input_ids_shape, self.hidden_size)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            max_position=self.max_position,
            type_vocab_size=self.type_vocab_size,
            embedding_size=self.embedding_size,
            dropout=self.dropout,
            layer_norm_eps=self.layer_norm_eps,
            initializer_range=self.initializer_range,
        )
        return config
