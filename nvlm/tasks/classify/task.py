"""Sequence classification and regression for any encoder plugin with a "classify" task (BERT,
ELECTRA): the fine-tuning spec for the shared loop and the evaluation of a dev set.

The plugin supplies the model (`build(cfg, "classify")` -> output `logits` [batch, num_labels],
`model.num_labels` 1 meaning regression) and its text settings; everything here is
model-agnostic and shares SQuAD's pieces (text settings, layer-wise lr decay, the compiled
inference step and its timing) by importing them.

    spec = train_spec(plugin, cfg, model, Path("train.jsonl"), init="runs/bert-p2", world=w)
    result = evaluate(plugin, cfg, model, Path("dev.jsonl"))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from nvlm.tasks.classify.features import ClassifyFeatures, featurize
from nvlm.tasks.classify.glue import glue_task, read_glue
from nvlm.tasks.classify.label_set import LabelSet
from nvlm.tasks.classify.reader import ClassifyDataset, read_classify
from nvlm.tasks.held_out import held_out_every
from nvlm.tasks.squad.task import layer_decay_multipliers, run_model_outputs, text_settings

INPUTS = ("input_ids", "input_mask", "segment_ids")


def is_regression(cfg) -> bool:
    """One output is a regression head (Hugging Face's `problem_type: regression`)."""
    return cfg.model.num_labels == 1


def label_set(cfg, source: str = "the model") -> LabelSet | None:
    """The run's label set (`model.labels`; outputs named "0", "1", ... when it has none), or
    None for regression. `source` names where it comes from in messages."""
    if is_regression(cfg):
        return None
    names = tuple(cfg.model.labels) or tuple(str(i) for i in range(cfg.model.num_labels))
    return LabelSet(names, source)


def read_split(cfg, path: Path, split: str, labels_from: str = "the model") -> ClassifyDataset:
    """`split` ("train", "dev", "dev_matched", ...) of the data at `path`: the GLUE task's
    layout when `data.glue_task` is set, else a labelled file read by the run's field names,
    with the run's labels (a label outside them is refused with its line, naming
    `labels_from`)."""
    d = cfg.data
    if d.glue_task:
        return read_glue(d.glue_task, path, split)
    return read_classify(
        path,
        text_field=d.text_field,
        pair_field=d.pair_field,
        label_field=d.label_field,
        regression=is_regression(cfg),
        labels=label_set(cfg, labels_from),
    )


# --- fine-tuning ---------------------------------------------------------------------------


def classification_loss(model, batch, training):
    """Softmax cross-entropy over the labels, with the batch accuracy."""
    logits = tf.cast(model({k: batch[k] for k in INPUTS}, training=training)["logits"], tf.float32)
    labels = batch["label_ids"]
    loss = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    )
    hits = tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == labels, tf.float32)
    return loss, {"accuracy": tf.reduce_mean(hits)}


def regression_loss(model, batch, training):
    """Mean squared error of the one output against the float target."""
    out = tf.cast(model({k: batch[k] for k in INPUTS}, training=training)["logits"], tf.float32)
    loss = tf.reduce_mean(tf.square(out[:, 0] - batch["targets"]))
    return loss, {"mse": loss}


def train_spec(plugin, cfg, model, data: Path, *, init: str, world):
    """The `TrainSpec` of the training split of `data`, featurized with the vocab and casing of
    the checkpoint `init` being fine-tuned."""
    vocab, lowercase = text_settings(plugin, init)
    feats = featurize(read_split(cfg, Path(data), "train"), vocab, lowercase=lowercase,
                      seq_len=cfg.data.seq_len)  # fmt: skip
    warn_truncated(feats, cfg)
    spec = spec_from_features(plugin, cfg, model, feats, world)
    return with_held_out_evaluation(spec, plugin, cfg, init=init, examples=len(feats))


def with_held_out_evaluation(spec, plugin, cfg, *, init: str, examples: int):
    """`spec` evaluating `data.eval_data` while it trains: every `train.eval_every` steps, or
    at the end of each epoch (`train.eval_each_epoch`). Logged as eval_* figures (metrics.jsonl,
    TensorBoard), scores in % as `nvlm eval` prints them."""
    import dataclasses

    every = held_out_every(
        cfg, examples, refusal="train.eval_every / train.eval_each_epoch need a held-out set: "
        "pass --eval-data",
    )  # fmt: skip
    if every is None:
        return spec
    data = Path(cfg.data.eval_data)

    def held_out() -> dict[str, float]:
        # Truncated dev examples are said by `nvlm eval` and the final evaluation, not each time.
        result = evaluate(plugin, cfg, spec.model, data, init=init, say_truncated=False)
        return held_out_figures(result)

    # Scores in % (as `nvlm eval` prints them); the mean squared error in the target's unit.
    units = {
        f"{split}{name}": "1" if name == "mse" else "%"
        for split in ("", "dev_matched_", "dev_mismatched_")
        for name in SCORES
    }
    return dataclasses.replace(spec, evaluate=held_out, eval_every=every, eval_units=units)


def held_out_figures(result: dict) -> dict[str, float]:
    """The scores of an `evaluate` result as flat numbers (MNLI: "dev_matched_accuracy", ...);
    timing, counts and the confusion matrix left out."""
    figures = {}
    for key, value in result.items():
        if isinstance(value, dict) and key.startswith("dev"):
            figures.update({f"{key}_{k}": v for k, v in held_out_figures(value).items()})
        elif key in SCORES and isinstance(value, (int, float)):
            figures[key] = float(value)
    return figures


# What a held-out evaluation logs while training (the keys `score` returns).
SCORES = ("accuracy", "macro_f1", "f1", "mcc", "combined", "pearson", "spearman", "mse")


def warn_truncated(feats: ClassifyFeatures, cfg) -> None:
    if feats.truncated:
        from nvlm.report import warn

        warn(
            f"{feats.truncated} example(s) longer than data.seq_len={cfg.data.seq_len} tokens "
            "were truncated (raise data.seq_len to keep them whole)"
        )


def spec_from_features(plugin, cfg, model, feats: ClassifyFeatures, world):
    """The fine-tuning `TrainSpec` of featurized examples: seeded, resumable order
    (ExampleSource), steps from `train.epochs` when set, ELECTRA's layer-wise lr decay."""
    from nvlm.data.examples import ArrayPart, ExampleSource
    from nvlm.train.trainer import TrainSpec, sequence_flops

    arrays = {k: np.asarray(getattr(feats, k), np.int32) for k in INPUTS}
    regression = is_regression(cfg)
    if regression:
        arrays["targets"] = np.asarray(feats.targets, np.float32)
    else:
        arrays["label_ids"] = np.asarray(feats.label_ids, np.int32)
    examples = len(feats)
    src = ExampleSource(
        [ArrayPart(arrays)],
        seed=cfg.train.seed,
        shuffle_buffer=max(cfg.data.shuffle_buffer, examples),
    )
    steps = cfg.train.steps
    if cfg.train.epochs is not None:
        steps = max(1, math.ceil(cfg.train.epochs * examples / cfg.global_batch))

    def batches(start: int):
        for b in src.micro_batches(start, cfg.train.batch_size, rank=world.rank, world=world.size):
            yield {k: tf.constant(v) for k, v in b.items()}

    return TrainSpec(
        model=model,
        loss_fn=regression_loss if regression else classification_loss,
        batches=batches,
        tokens_per_example=cfg.data.seq_len,
        flops_per_example=sequence_flops(
            lambda n: plugin.flops_per_token(cfg, n, task="classify"),
            arrays["input_mask"].astype(bool).sum(axis=1),
        ),
        metric_units={"mse": "1"} if regression else {"accuracy": "1"},
        total_steps=steps,
        lr_multipliers=layer_decay_multipliers(model, cfg.model.num_layers, cfg.train.layer_decay),
    )


# --- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    """ClassifyFeatures as squad's `run_model_outputs` reads features (`inputs()`, len)."""

    feats: ClassifyFeatures

    def inputs(self) -> dict[str, np.ndarray]:
        return {k: getattr(self.feats, k) for k in INPUTS}

    def __len__(self) -> int:
        return len(self.feats)


def eval_splits(cfg, data: Path) -> list[str]:
    """The dev sets scored: MNLI's matched and mismatched ones for a GLUE directory, else one."""
    if cfg.data.glue_task and Path(data).is_dir():
        splits = [s for s in glue_task(cfg.data.glue_task).splits if s.startswith("dev_")]
        return splits or ["dev"]
    return ["dev"]


def evaluate(plugin, cfg, model, data: Path, *, init: str | None, say_truncated=True) -> dict:
    """Logits over the dev set(s) at `data` in batches of `data.eval_batch_size` (XLA when
    `train.xla`), then GLUE's official metrics (data.glue_task) or accuracy, macro-F1 and the
    confusion matrix (Pearson, Spearman and MSE for regression), with latency and throughput.
    Two dev sets (MNLI) are reported per set, their names as key prefixes."""
    vocab, lowercase = text_settings(plugin, init)
    splits = eval_splits(cfg, Path(data))
    sets = [read_split(cfg, Path(data), split, f"--init {init}") for split in splits]
    feats = [featurize(ds, vocab, lowercase=lowercase, seq_len=cfg.data.seq_len) for ds in sets]
    for f in feats if say_truncated else ():
        warn_truncated(f, cfg)
    joined = ClassifyFeatures(
        *(np.concatenate([getattr(f, k) for f in feats]) for k in INPUTS),
        None, None, sum(f.truncated for f in feats),
    )  # fmt: skip
    outputs, timing = run_model_outputs(
        model, _Inputs(joined), cfg.data.eval_batch_size, xla=cfg.train.xla
    )
    logits = outputs["logits"]
    result: dict = {"task": "classify", "glue_task": cfg.data.glue_task, "data": str(data)}
    result["examples"] = len(joined)
    result.update(timing.summary())
    lo = 0
    for split, ds in zip(splits, sets, strict=True):
        scores = score(cfg, ds, logits[lo : lo + len(ds)])
        lo += len(ds)
        if len(splits) == 1:
            result.update(scores)
        else:
            result[split] = scores
    return result


def score(cfg, dataset: ClassifyDataset, logits: np.ndarray) -> dict:
    """The metrics of `logits` against `dataset`'s labels or targets (in %, as GLUE prints)."""
    from nvlm.tasks.classify.metrics import classification_report, glue_metrics, regression_report

    if is_regression(cfg):
        predictions = logits[:, 0]
        gold = dataset.targets
    else:
        predictions = np.argmax(logits, axis=-1)
        gold = dataset.labels
    if cfg.data.glue_task:
        scores = glue_metrics(cfg.data.glue_task, gold, predictions)
        if not is_regression(cfg):
            names = label_set(cfg).names
            report = classification_report(gold, predictions, names)
            scores["confusion_matrix"] = report["confusion_matrix"]
        return scores
    if is_regression(cfg):
        return regression_report(gold, predictions)
    return classification_report(gold, predictions, label_set(cfg).names)
