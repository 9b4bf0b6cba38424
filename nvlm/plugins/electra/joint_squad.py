"""SQuAD training loss and answer decoding of ELECTRA's joint span head: what
`nvlm.tasks.squad` uses instead of its independent start/end ones (plugin hook `squad_head`)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from nvlm.tasks.squad import SpanCandidate, SquadPredictions, answer_example, valid_span


class JointSquad:
    """Loss and decoding for `ElectraQuestionAnswerer` (see `JointSpanHead`).

    Loss: the mean of the start and end cross-entropies (the end one conditioned on the gold
    start), plus `answerable_weight` x the answerability sigmoid cross-entropy for SQuAD v2.0.

    Decoding: per window, the beam's beam_size^2 (start, end) pairs that are valid answer
    spans (`nvlm.tasks.squad.valid_span`: context tokens, start <= end, at most `max_answer_len`
    tokens, the start in its max-context window) become `SpanCandidate`s scored
    log p(start) + log p(end | start); `nvlm.tasks.squad.answer_example` merges the windows into the
    n-best list. v2.0: the no-answer candidate's score is the answerability logit of the
    window most sure that an answer exists (the lowest), so null_odds = logit - best span
    score and "" is predicted above `null_threshold` (NVIDIA's calibrated -5.6 by default;
    `nvlm eval` reports the best threshold on a dev set: best_f1_thresh).

    Args:
        cfg: the run config (`model.answerable_weight`, `model.n_best`, `model.max_answer_len`,
            `model.null_threshold`, `data.squad_version`).
    """

    def __init__(self, cfg) -> None:
        self.v2 = cfg.data.squad_version == "2.0"
        self.answerable_weight = cfg.model.answerable_weight
        self.n_best = cfg.model.n_best
        self.max_answer_len = cfg.model.max_answer_len
        self.null_threshold = cfg.model.null_threshold
        self.metric_units = {"start_acc": "1", "end_acc": "1"}
        if self.v2:
            self.metric_units.update(answerable_loss="nats", answerable_acc="1")

    def loss(self, model, batch, training):
        out = model.train_logits(batch, training=training)
        start_pos = tf.cast(batch["start_positions"], tf.int32)
        end_pos = tf.cast(batch["end_positions"], tf.int32)
        start_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=start_pos, logits=out["start_logits"]
        )
        end_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=end_pos, logits=out["end_logits"]
        )
        loss = tf.reduce_mean((start_loss + end_loss) / 2.0)

        def accuracy(logits, labels):
            hits = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), labels)
            return tf.reduce_mean(tf.cast(hits, tf.float32))

        metrics = {
            "start_acc": accuracy(out["start_logits"], start_pos),
            "end_acc": accuracy(out["end_logits"], end_pos),
        }
        if self.v2:
            impossible = tf.cast(tf.reshape(batch["is_impossible"], [-1]), tf.float32)
            logit = out["answerable_logit"]
            answerable_loss = tf.reduce_mean(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=impossible, logits=logit)
            )
            loss += self.answerable_weight * answerable_loss
            metrics["answerable_loss"] = answerable_loss
            guessed = tf.cast(logit > 0.0, tf.float32)
            metrics["answerable_acc"] = tf.reduce_mean(tf.cast(guessed == impossible, tf.float32))
        return loss, metrics

    def decode(
        self, dataset, features, outputs: dict, *, null_threshold: float, version_2: bool
    ) -> SquadPredictions:
        """Answers for every question of `dataset` from the beam outputs of all features."""
        start_lp = np.asarray(outputs["start_top_log_probs"], np.float64)
        start_idx = np.asarray(outputs["start_top_index"])
        end_lp = np.asarray(outputs["end_top_log_probs"], np.float64)
        end_idx = np.asarray(outputs["end_top_index"])
        answerable = np.asarray(outputs["answerable_logit"], np.float64)
        preds = SquadPredictions(null_odds={} if version_2 else None)
        for example, rows in zip(
            dataset.examples, features.rows_by_example(len(dataset)), strict=True
        ):
            if len(rows) == 0:
                continue
            candidates = []
            for row in (int(r) for r in rows):
                for i, start in enumerate(start_idx[row]):
                    for j, end in enumerate(end_idx[row, i]):
                        if valid_span(features, row, int(start), int(end), self.max_answer_len):
                            s, e = float(start_lp[row, i]), float(end_lp[row, i, j])
                            candidates.append(SpanCandidate(row, int(start), int(end), s, e, s + e))
            null = None
            if version_2:
                row = int(min(rows, key=lambda r: answerable[int(r)]))
                logit = float(answerable[row])
                null = SpanCandidate(row, 0, 0, logit, 0.0, logit)
            text, nbest, odds = answer_example(
                example, features, candidates, n_best=self.n_best, null=null,
                null_threshold=null_threshold,
            )  # fmt: skip
            preds.predictions[example.qid] = text
            preds.nbest[example.qid] = nbest
            if preds.null_odds is not None:
                preds.null_odds[example.qid] = odds
        return preds
