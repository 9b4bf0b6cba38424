"""`nvlm predict --task classify`: the label of a text (or of a text pair) and the probability
of every label, from a fine-tuned classifier; the score of a regression model (one output).

    classifier = Classifier(registry.get("bert"), "runs/sst2")
    classifier.classify(["a fine film"])          # [{"label": "positive",
                                                  #   "probabilities": {"negative": 0.03, ...}}]
    classifier.classify(["a cat sat"], ["a cat was sitting"])   # pairs: [CLS] a [SEP] b [SEP]

The model is loaded through `load_model_and_absent(plugin, init, "classify")`, so the run's (or
--preset's) precision and XLA and any --set apply; a source without a classification head (a
pretraining run, a Hugging Face BertModel, a SQuAD model) is refused: its head would keep its
random initialisation and label every text with confident nonsense. The label names are the
run's `model.labels` (a Hugging Face directory's `id2label`), else "LABEL_0", "LABEL_1", ... as
Hugging Face names unnamed labels. Texts are laid out and truncated as for fine-tuning
(`nvlm.tasks.classify.features.encode`: longest-first for pairs) to the run's `data.seq_len`.
"""

from __future__ import annotations

import json
from typing import BinaryIO

import numpy as np

from nvlm.errors import UserError
from nvlm.tasks.pipeline import json_type, open_input, run_pipeline, string_field

# Why a source without a classification head is refused, and what to pass instead.
NO_HEAD = (
    "classify needs a fine-tuned classifier (nvlm finetune --task classify, or a Hugging Face "
    "*ForSequenceClassification directory)"
)
HEAD = "classification head"  # how the plugins' load warnings title the head (bert_weights.py)
EXAMPLE = '--text "a fine film" [--pair "a second text"]'


def require_head(source: str, absent: list[str]) -> None:
    """UserError when `absent` (`load_model_and_absent`'s third value) holds the head:
    "SOURCE has no classification head (...): classify needs a fine-tuned classifier ...",
    `source` as the command names it ("--init runs/p1", or convert's SRC)."""
    missing = [title for title in absent if title.startswith(HEAD)]
    if missing:
        raise UserError(f"{source} has no {missing[0]}: {NO_HEAD}")


def label_names(model_cfg) -> tuple[str, ...]:
    """The names of a classifier's outputs in id order (`model.labels`, else LABEL_i); () for
    a regression model (one output)."""
    if model_cfg.num_labels == 1:
        return ()
    if model_cfg.labels:
        return tuple(model_cfg.labels)
    return tuple(f"LABEL_{i}" for i in range(model_cfg.num_labels))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (probabilities that sum to 1 to the last digit printed)."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


class Classifier:
    """A classification (or regression) model loaded once, labelling batches of texts.

    Args:
        plugin: the model's `ModelPlugin` ("classify" among its tasks).
        init: the `--init` source: an nvlm classify run or checkpoint, or a Hugging Face
            `*ForSequenceClassification` directory.
        load_options: `PredictRequest.load_options()` (precision, XLA, preset, --set).

    Example:
        >>> Classifier(registry.get("electra"), "runs/mrpc").classify(["a"], ["b"])  # doctest: +SKIP
        [{"label": "paraphrase", "probabilities": {"different": 0.2, "paraphrase": 0.8}}]
    """

    def __init__(self, plugin, init: str, *, load_options=None):
        import tensorflow as tf

        from nvlm.data.vocab import Vocab
        from nvlm.tasks.inference import load_model_and_absent

        cfg, model, absent = load_model_and_absent(plugin, init, "classify", **(load_options or {}))
        require_head(f"--init {init}", absent)
        vocab_path, self.lowercase = plugin.text_settings(init)
        if vocab_path is None:
            raise UserError(f"--init {init} has no vocab.txt next to it (copy the vocab there)")
        self.vocab = Vocab.load(vocab_path)
        self.labels = label_names(cfg.model)
        self.regression = cfg.model.num_labels == 1
        # A Hugging Face directory brings no data.seq_len of its own (the default, 128, may
        # exceed its position table): never lay out more tokens than the model has positions.
        self.seq_len = min(cfg.data.seq_len, int(getattr(cfg.model, "max_position", 512)))
        self._forward = tf.function(
            lambda batch: tf.cast(model(batch, training=False)["logits"], tf.float32),
            reduce_retracing=True,
            jit_compile=bool(cfg.train.xla),
        )

    # -- inputs -> logits -> results -----------------------------------------------------------
    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """float32 [rows, num_labels] of a batch of `input_ids`, `input_mask`, `segment_ids`."""
        import tensorflow as tf

        inputs = {k: tf.constant(np.asarray(batch[k], np.int32)) for k in _INPUTS}
        return self._forward(inputs).numpy()

    def encode(self, texts: list[str], pairs: list[str] | None = None) -> tuple[dict, int]:
        """(batch, truncated count): the fine-tuning layout, cut after the longest row (padding
        beyond it changes no logit and costs time)."""
        from nvlm.tasks.classify.features import encode

        ids, mask, segments, truncated = encode(
            texts, pairs, self.vocab, lowercase=self.lowercase, seq_len=self.seq_len
        )
        length = int(mask.sum(axis=1).max())
        batch = dict(zip(_INPUTS, (ids, mask, segments), strict=True))
        return {k: v[:, :length] for k, v in batch.items()}, truncated

    def results(self, logits: np.ndarray) -> list[dict]:
        """Per row: {"label", "probabilities": {name: p}} or, for regression, {"score"}."""
        if self.regression:
            return [{"score": float(row[0])} for row in logits]
        out = []
        for probs in softmax(logits):
            out.append(
                {
                    "label": self.labels[int(np.argmax(probs))],
                    "probabilities": {n: float(p) for n, p in zip(self.labels, probs, strict=True)},
                }
            )
        return out

    def classify(self, texts: list[str], pairs: list[str] | None = None) -> list[dict]:
        """The result of each text (of each (text, pair) when `pairs` is given)."""
        batch, _ = self.encode(texts, pairs)
        return self.results(self.logits(batch))

    # -- JSONL (`run_pipeline`) -------------------------------------------------------------------
    def parse(self, number: int, line: str) -> dict:
        """A text per line, or a JSON object {"id"?, "text", "text_pair"?}; the id defaults to
        the line number. ValueError: that line's error."""
        item: dict = {"id": number}
        if not line.lstrip().startswith("{"):
            item["text"] = line
            return item
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise ValueError('expected a JSON object {"id"?, "text", "text_pair"?}')
        if obj.get("id") is not None:
            if isinstance(obj["id"], bool) or not isinstance(obj["id"], (str, int)):
                raise ValueError(f"'id' must be a string or an integer, not {json_type(obj['id'])}")
            item["id"] = obj["id"]
        item["text"] = string_field(obj, "text")
        pair = string_field(obj, "text_pair", required=False)
        if pair is not None:
            item["text_pair"] = pair
        return item

    def __call__(self, items: list[dict]) -> list[dict]:
        """{"id", "label", "probabilities"} (or {"id", "score"}) per item, in order; single
        texts and pairs of one batch go through the model apart (their layouts differ)."""
        out: list[dict | None] = [None] * len(items)
        for paired in (False, True):
            rows = [i for i, item in enumerate(items) if ("text_pair" in item) == paired]
            if not rows:
                continue
            texts = [items[i]["text"] for i in rows]
            pairs = [items[i]["text_pair"] for i in rows] if paired else None
            for i, result in zip(rows, self.classify(texts, pairs), strict=True):
                out[i] = {"id": items[i]["id"], **result}
        return out


_INPUTS = ("input_ids", "input_mask", "segment_ids")


# -- what `nvlm predict --task classify` calls ----------------------------------------------------
def classify_input(request) -> BinaryIO | None:
    """The --input stream, or None for one --text [--pair] (checked here, before a model is
    loaded: a wrong path or a missing text fails at once)."""
    from nvlm.tasks.prediction import check_text

    if request.pair is not None and request.text is None:
        raise UserError(
            "--pair needs --text (the first text of the pair; with --input, give "
            '"text_pair" on each line)'
        )
    if (request.text is None) == (request.input is None):
        raise UserError(
            f"--task classify needs exactly one of --text TEXT or --input FILE|- ({EXAMPLE})"
        )
    for option, value in (("--text", request.text), ("--pair", request.pair)):
        if value is not None and not value.strip():
            raise UserError(f"{option} is empty (pass the text to classify)")
        check_text(option, value)
    return open_input(request.input) if request.input is not None else None


def classify_one(classifier: Classifier, text: str, pair: str | None = None) -> dict:
    """The result of --text (and --pair), what --json prints; warns when it was cut."""
    from nvlm.report import warn

    batch, truncated = classifier.encode([text], None if pair is None else [pair])
    if truncated:
        warn(
            f"--text{' and --pair' if pair is not None else ''} cut to the model's "
            f"{classifier.seq_len} tokens (data.seq_len; the end is not read)"
        )
    [result] = classifier.results(classifier.logits(batch))
    return result


def result_lines(result: dict) -> tuple[str, list[str]]:
    """For people: the label (or the score) for stdout, then "name<TAB>probability" per label,
    most probable first, for stderr."""
    if "score" in result:
        return f"{result['score']:.6g}", []
    ranked = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])
    return result["label"], [f"{name}\t{p:.4f}" for name, p in ranked]


def classify_stream(classifier: Classifier, stream: BinaryIO, batch_size: int) -> int:
    """One JSON line per input line: the result with its id, or {"line", "error"} in its
    place; returns the number of lines that failed."""
    return run_pipeline(stream, batch_size, classifier.parse, classifier)


def run(plugin, request, *, verbose: bool = False, json_out: bool = False) -> int:
    """`nvlm predict --task classify`: the label of --text (--pair) for people (the label on
    stdout, the probabilities on stderr), or with `json_out` {"label", "probabilities"} ({"score"}
    for regression); with --input one JSON line per input line. Returns the failed lines."""
    import sys
    import time

    from nvlm.report import emit_json, info

    t0 = time.perf_counter()
    stream = classify_input(request)
    classifier = Classifier(plugin, request.init, load_options=request.load_options())
    if verbose:
        info(f"model loaded in {time.perf_counter() - t0:.2f} s")
    if stream is not None:
        return classify_stream(classifier, stream, request.batch())
    result = classify_one(classifier, request.text, request.pair)
    if json_out:
        emit_json(result)
        return 0
    shown, notes = result_lines(result)
    sys.stdout.write(shown + "\n")
    sys.stdout.flush()
    for note in notes:
        sys.stderr.write(note + "\n")
    sys.stderr.flush()
    return 0
