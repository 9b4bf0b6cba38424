"""BERT with a classification (or regression) head on the pooled [CLS] output."""

from __future__ import annotations

import keras
from keras import ops

from nvlm.models.bert.bert_backbone import BACKBONE_INPUTS, BertBackbone, select_inputs
from nvlm.models.encoder.backbone import run_blocks


@keras.saving.register_keras_serializable(package="nvlm")
class BertClassifier(keras.Model):
    """A `BertBackbone` with a sequence classification head: dropout, then one dense layer
    on the pooled [CLS] output (`tanh(W h[CLS] + b)`, the pooler pretrained with NSP).

    This is the fine-tuning model of Devlin et al. 2018 (section 4.1, GLUE) and Hugging Face's
    `BertForSequenceClassification` (pooler -> dropout -> classifier). With `num_labels=1` the
    one output is a regression score (STS-B), trained with mean squared error.

    Inputs: the backbone's (`input_ids`, `input_mask`, `segment_ids`; other keys are ignored).

    Outputs: `{"logits": [batch, num_labels]}`, float32 under every precision policy (the
    softmax, the loss and the metrics read them in full precision).

    Checkpoint names: Google's run_classifier.py `output_weights` `[num_labels, hidden]` /
    `output_bias`, Hugging Face's `classifier.weight` / `.bias` (nvlm.convert.bert_weights).

    Args:
        backbone: the `BertBackbone` to fine-tune.
        num_labels: outputs (classes; 1 for regression).
        dropout: dropout rate before the dense layer; None: the backbone's `dropout`.
        **kwargs: standard `keras.Model` arguments (`name`).

    Example:
    >>> from nvlm.models.bert.config import BertConfig
    >>> backbone = BertBackbone(**BertConfig.from_size("tiny", vocab_size=128).to_backbone_kwargs())
    >>> model = BertClassifier(backbone, num_labels=3)
    >>> ids = keras.ops.ones((2, 16), dtype="int32")
    >>> out = model({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids})
    >>> tuple(out["logits"].shape), keras.backend.standardize_dtype(out["logits"].dtype)
    ((2, 3), 'float32')
    """

    def __init__(
        self, backbone: BertBackbone, num_labels: int = 2, dropout: float | None = None, **kwargs
    ) -> None:
        dropout = backbone.dropout if dropout is None else dropout
        head_dropout = keras.layers.Dropout(dropout, name="classifier_dropout")
        # float32 even under a mixed policy: [hidden] x [num_labels] costs nothing, and logits
        # rounded to bfloat16's 8 bits would blur close classes and regression scores.
        classifier = keras.layers.Dense(
            num_labels,
            kernel_initializer=keras.initializers.TruncatedNormal(
                stddev=backbone.initializer_range
            ),
            dtype="float32",
            name="classifier",
        )
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name) for name in BACKBONE_INPUTS
        }
        # The blocks on the real tokens only (padding is most of a short text's 128 tokens);
        # the head reads the [CLS] row, which is always a real token.
        x = backbone.embed(inputs)
        x, _ = run_blocks(x, backbone.blocks, inputs["input_mask"], unpad=True)
        pooled = backbone.pooler(x[:, 0, :])
        logits = ops.cast(classifier(head_dropout(pooled)), "float32")
        super().__init__(inputs=inputs, outputs={"logits": logits}, **kwargs)

        self.backbone = backbone
        self.num_labels = num_labels
        self.dropout = dropout
        self.head_dropout = head_dropout
        self.classifier = classifier
        # Checkpoints store `model.variables` by index: keep the order of a model that calls
        # `backbone(inputs)` (the backbone's, pooler included, then the head's).
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
    def from_config(cls, config: dict) -> BertClassifier:
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        return cls(**config)
