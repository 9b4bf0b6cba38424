"""What the BERT and ELECTRA backbones share: their inputs, the embedding and block layers
built from their arguments, the forward pass through the blocks, and a Keras functional model
whose constructor arguments are its config (mirrored as attributes and by `get_config()`).

Layer names are fixed here (`embeddings`, `layer_0`, `layer_1`, ...): checkpoints and the
weight-name tables of nvlm.convert address the variables by them.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

import keras

from nvlm.layers import Embeddings, TransformerEncoderBlock

# Input names, as the datasets of Google's and NVIDIA's pretraining shards.
BACKBONE_INPUTS = ("input_ids", "input_mask", "segment_ids")


def select_inputs(inputs, names: tuple[str, ...]):
    """The entries `names` of a feature dict, so that a whole batch (with labels) can be passed.

    A Keras functional model flattens a dict with extra keys POSITIONALLY onto its inputs
    (with only a warning), which would feed e.g. `masked_lm_ids` in as `input_mask`.
    """
    if not isinstance(inputs, dict):
        return inputs
    missing = [name for name in names if name not in inputs]
    if missing:
        raise KeyError(f"model inputs lack {missing}; got {sorted(inputs)}")
    return {name: inputs[name] for name in names}


def backbone_inputs() -> dict:
    """The symbolic int32 `[batch, seq]` inputs of a backbone, by name."""
    return {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in BACKBONE_INPUTS}


def encoder_embeddings(config: dict, width: int, dtype=None) -> Embeddings:
    """Word, position and segment tables `width` wide (+ LayerNorm, dropout), per `config`."""
    return Embeddings(
        config["vocab_size"],
        width,
        max_position=config["max_position"],
        type_vocab_size=config["type_vocab_size"],
        dropout=config["dropout"],
        layer_norm_eps=config["layer_norm_eps"],
        initializer_range=config["initializer_range"],
        dtype=dtype,
        name="embeddings",
    )


def encoder_blocks(config: dict, dtype=None) -> list[TransformerEncoderBlock]:
    """`config["num_layers"]` post-LN Transformer blocks, named `layer_{i}`."""
    return [
        TransformerEncoderBlock(
            config["hidden_size"],
            config["num_heads"],
            config["intermediate_size"],
            dropout=config["dropout"],
            attention_dropout=config["attention_dropout"],
            layer_norm_eps=config["layer_norm_eps"],
            initializer_range=config["initializer_range"],
            dtype=dtype,
            name=f"layer_{i}",
        )
        for i in range(config["num_layers"])
    ]


def run_blocks(
    x, blocks: list[TransformerEncoderBlock], attention_mask, unpad: bool = False
) -> tuple:
    """(the last block's output, hidden states): `x`, then each block's output, so that
    `hidden_states[K]` is layer K (feature extraction with `--layer K`).

    `unpad`: the blocks compute on the real tokens only; padding rows are then not computed
    (for heads that never read padding positions; see `TransformerEncoderBlock`)."""
    hidden_states = [x]
    for block in blocks:
        x = block(x, attention_mask=attention_mask, unpad=unpad)
        hidden_states.append(x)
    return x, hidden_states


class EncoderBackbone(keras.Model):
    """Base of `BertBackbone` and `ElectraBackbone`: input selection, the word embedding and
    the config round trip.

    The config is the constructor's named arguments (keras-hub's convention), in signature
    order: a subclass takes them with `config_of(locals())` at the top of its constructor and
    passes them to `_mirror_config` after `super().__init__` (Keras tracks attributes only
    from then); `get_config()` returns them.
    """

    # Constructor arguments that are not config: layers passed in to be shared.
    shared_arguments: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def config_keys(cls) -> tuple[str, ...]:
        """The constructor's named arguments but `dtype` (saved as a policy) and shared layers."""
        skip = ("self", "dtype", *cls.shared_arguments)
        params = inspect.signature(cls.__init__).parameters.values()
        return tuple(
            p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD and p.name not in skip
        )

    @classmethod
    def config_of(cls, arguments: dict) -> dict:
        """The config entries of a constructor's `locals()`."""
        return {key: arguments[key] for key in cls.config_keys()}

    def _mirror_config(self, config: dict) -> None:
        for key, value in config.items():
            setattr(self, key, value)

    def __call__(self, inputs, *args, **kwargs):
        return super().__call__(select_inputs(inputs, BACKBONE_INPUTS), *args, **kwargs)

    def embed(self, inputs: dict):
        """The first block's input for a dict of backbone inputs (in a functional graph of a
        model that runs the blocks itself): the embeddings, in this base class."""
        return self.embeddings(inputs["input_ids"], inputs["segment_ids"])

    @property
    def token_embedding(self) -> keras.layers.Embedding:
        """The word embedding layer (the matrix a masked-LM head ties to)."""
        return self.embeddings.word_embeddings

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            **{key: getattr(self, key) for key in self.config_keys()},
        }

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)
