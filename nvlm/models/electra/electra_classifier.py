"""ELECTRA's discriminator with a classification (or regression) head on [CLS]."""

from __future__ import annotations

import keras
from keras import ops

from nvlm.models.electra.electra_backbone import ElectraBackbone
from nvlm.models.encoder.backbone import BACKBONE_INPUTS, run_blocks, select_inputs


@keras.saving.register_keras_serializable(package="nvlm")
class ElectraClassifier(keras.Model):
    """An ELECTRA discriminator with a sequence classification head on the [CLS] token:
    dropout, dense (hidden size), GELU, dropout, dense (`num_labels`).

    ELECTRA has no pooler; its fine-tuning head is this two-layer one (Hugging Face's
    `ElectraClassificationHead`, whose GELU follows ELECTRA's released fine-tuning code where
    BERT's pooler has tanh). With `num_labels=1` the output is a regression score (STS-B).

    Inputs: the backbone's (`input_ids`, `input_mask`, `segment_ids`; other keys ignored).

    Outputs: `{"logits": [batch, num_labels]}`, float32 under every precision policy.

    Checkpoint names: Hugging Face's `classifier.dense.*` and `classifier.out_proj.*`
    (nvlm.convert.electra_weights).

    Args:
        backbone: the discriminator `ElectraBackbone`.
        num_labels: outputs (classes; 1 for regression).
        dropout: dropout rate before each dense layer; None: the backbone's `dropout`.
        **kwargs: standard `keras.Model` arguments (`name`).

    Example:
    >>> from nvlm.models.electra.config import ElectraConfig
    >>> cfg = ElectraConfig(size="tiny", vocab_size=128, hidden_size=64, num_layers=2,
    ...                     num_heads=2, intermediate_size=256, embedding_size=32)
    >>> model = ElectraClassifier(ElectraBackbone(**cfg.backbone_kwargs()), num_labels=2)
    >>> ids = keras.ops.ones((2, 16), dtype="int32")
    >>> out = model({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids})
    >>> tuple(out["logits"].shape), keras.backend.standardize_dtype(out["logits"].dtype)
    ((2, 2), 'float32')
    """

    def __init__(
        self,
        backbone: ElectraBackbone,
        num_labels: int = 2,
        dropout: float | None = None,
        **kwargs,
    ) -> None:
        dropout = backbone.dropout if dropout is None else dropout
        init = keras.initializers.TruncatedNormal(stddev=backbone.initializer_range)
        # One Dropout layer used twice: it has no weights, and each call draws its own mask.
        head_dropout = keras.layers.Dropout(dropout, name="classifier_dropout")
        classifier_dense = keras.layers.Dense(
            backbone.hidden_size,
            kernel_initializer=init,
            dtype=backbone.dtype_policy,
            name="classifier_dense",
        )
        # float32 even under a mixed policy (cheap; logits in full precision).
        classifier_out = keras.layers.Dense(
            num_labels, kernel_initializer=init, dtype="float32", name="classifier_out"
        )
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name) for name in BACKBONE_INPUTS
        }
        # The blocks on the real tokens only; the head reads [CLS], always a real token.
        x = backbone.embed(inputs)
        x, _ = run_blocks(x, backbone.blocks, inputs["input_mask"], unpad=True)
        h = classifier_dense(head_dropout(x[:, 0, :]))
        h = ops.gelu(h, approximate=False)  # exact GELU, as the encoder's blocks
        logits = ops.cast(classifier_out(head_dropout(h)), "float32")
        super().__init__(inputs=inputs, outputs={"logits": logits}, **kwargs)

        self.backbone = backbone
        self.num_labels = num_labels
        self.dropout = dropout
        self.head_dropout = head_dropout
        self.classifier_dense = classifier_dense
        self.classifier_out = classifier_out
        # Variables in the order of a model that calls `backbone(inputs)`, then the head's.
        self._layers.remove(backbone)
        self._layers.insert(0, backbone)

    def __call__(self, inputs, *args, **kwargs):
        return super().__call__(select_inputs(inputs, BACKBONE_INPUTS), *args, **kwargs)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.layers.serialize(self.backbone),
            "num_labels": self.num_labels,
            "dropout": self.dropout,
        }

    @classmethod
    def from_config(cls, config: dict) -> ElectraClassifier:
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)
