"""ELECTRA's SQuAD head: start, then end conditioned on the start, plus answerability."""

from __future__ import annotations

import keras
import tensorflow as tf

from nvlm.layers import gelu

# Added to the logits of positions that can not start or end an answer (large, not -inf:
# log-softmax of a fully masked row must stay finite).
_FORBIDDEN = -10000.0


@keras.saving.register_keras_serializable(package="nvlm")
class JointSpanHead(keras.layers.Layer):
    """Joint start/end span prediction with beam search, and an answerability classifier.

    This is the question-answering module ELECTRA takes from XLNet (Clark et al. 2020,
    appendix: "jointly rather than independently predicts the start and end positions and
    has an 'answerability' classifier added for SQuAD 2.0"; Yang et al. 2019):

      start_logits[t] = w_s . h_t
      end_logits[s, t] = w_e . gelu(W [h_s ; h_t] + b) + c          (end given start s)
      answerable_logit = w_a . gelu(V [sum_t p_t h_t ; h_CLS] + d) + e,  p = softmax(start)

    Positions outside the context (and the window's final [SEP]) are forbidden, except [CLS]
    (position 0): the training target of an unanswerable window. In training the end logits are
    conditioned on the gold start (teacher forcing); at inference on each of the `beam_size`
    best starts, and the `beam_size` best ends of each are kept: beam_size^2 candidate spans
    scored by log p(start) + log p(end | start). The answerability logit is the log-odds of
    "no answer" (label `is_impossible`).

    Speed: `W [h_s ; h_t]` is computed as `W_a h_s + W_b h_t` (the kernel split in two), so
    the `[seq, hidden]` product is done once and shared by every start of the beam.

    Args:
        hidden_size: width of the two hidden layers (512 in ELECTRA's code).
        beam_size: starts kept, and ends kept per start, at inference.
        initializer_range: standard deviation of the truncated normal kernel initialiser.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    >>> head = JointSpanHead(16, beam_size=2)
    >>> h = keras.random.normal((1, 6, 8))
    >>> allowed = keras.ops.convert_to_tensor([[1, 0, 0, 1, 1, 1]], dtype="float32")
    >>> out = head.predict_spans(h, allowed)
    >>> tuple(out["end_top_index"].shape)
    (1, 2, 2)
    """

    def __init__(
        self, hidden_size: int, beam_size: int = 4, initializer_range: float = 0.02, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.beam_size = beam_size
        self.initializer_range = initializer_range
        init = keras.initializers.TruncatedNormal(stddev=initializer_range)
        policy = self.dtype_policy

        def dense(units, name, activation=None):
            return keras.layers.Dense(
                units, activation=activation, kernel_initializer=init, dtype=policy, name=name
            )

        self.start = dense(1, "start")
        self.end_hidden = dense(hidden_size, "end_hidden")  # applied through its kernel halves
        self.end = dense(1, "end")
        self.answer_hidden = dense(hidden_size, "answer_hidden", activation=gelu)
        self.answerable = dense(1, "answerable")

    def build(self, input_shape) -> None:
        width = input_shape[-1]
        self.start.build((None, None, width))
        self.end_hidden.build((None, None, 2 * width))
        self.end.build((None, None, self.hidden_size))
        self.answer_hidden.build((None, 2 * width))
        self.answerable.build((None, self.hidden_size))
        self.built = True

    # -- pieces ---------------------------------------------------------------------------
    def start_logits(self, sequence_output, allowed):
        logits = tf.cast(tf.squeeze(self.start(sequence_output), -1), tf.float32)
        return logits + (1.0 - tf.cast(allowed, tf.float32)) * _FORBIDDEN

    def _end_logits(self, sequence_output, start_states, allowed):
        """End logits `[batch, beams, seq]` for start states `[batch, beams, hidden]`."""
        width = sequence_output.shape[-1]
        kernel = tf.cast(self.end_hidden.kernel, self.compute_dtype)
        bias = tf.cast(self.end_hidden.bias, self.compute_dtype)
        from_start = tf.matmul(start_states, kernel[:width]) + bias  # [B, K, Q]
        from_end = tf.matmul(sequence_output, kernel[width:])  # [B, T, Q]
        hidden = gelu(from_start[:, :, None, :] + from_end[:, None, :, :])  # [B, K, T, Q]
        logits = tf.cast(tf.squeeze(self.end(hidden), -1), tf.float32)
        return logits + (1.0 - tf.cast(allowed, tf.float32))[:, None, :] * _FORBIDDEN

    def answerable_logit(self, sequence_output, start_logits):
        probs = tf.cast(tf.nn.softmax(start_logits, axis=-1), self.compute_dtype)
        expected_start = tf.einsum("bt,bth->bh", probs, sequence_output)
        features = tf.concat([expected_start, sequence_output[:, 0, :]], axis=-1)
        logit = self.answerable(self.answer_hidden(features))
        return tf.cast(tf.squeeze(logit, -1), tf.float32)

    # -- the two modes ------------------------------------------------------------------------
    def train_logits(self, sequence_output, allowed, start_positions):
        """Training: start logits `[B, T]`, end logits given the GOLD start `[B, T]`, and the
        answerability logit `[B]`."""
        start = self.start_logits(sequence_output, allowed)
        gold = tf.gather(sequence_output, tf.cast(start_positions, tf.int32)[:, None], batch_dims=1)
        end = self._end_logits(sequence_output, gold, allowed)[:, 0, :]
        return {
            "start_logits": start,
            "end_logits": end,
            "answerable_logit": self.answerable_logit(sequence_output, start),
        }

    def predict_spans(self, sequence_output, allowed):
        """Inference: the beam. `start_top_log_probs` / `start_top_index` `[B, K]`,
        `end_top_log_probs` / `end_top_index` `[B, K, K]` (row i: ends of start i), and
        `answerable_logit` `[B]`."""
        start = self.start_logits(sequence_output, allowed)
        beam = min(self.beam_size, sequence_output.shape[1] or self.beam_size)
        start_lp, start_idx = tf.math.top_k(tf.nn.log_softmax(start, -1), k=beam)
        states = tf.gather(sequence_output, start_idx, batch_dims=1)  # [B, K, H]
        end = self._end_logits(sequence_output, states, allowed)
        end_lp, end_idx = tf.math.top_k(tf.nn.log_softmax(end, -1), k=beam)
        return {
            "start_top_log_probs": start_lp,
            "start_top_index": start_idx,
            "end_top_log_probs": end_lp,
            "end_top_index": end_idx,
            "answerable_logit": self.answerable_logit(sequence_output, start),
        }

    def call(self, sequence_output, allowed):
        return self.predict_spans(sequence_output, allowed)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            hidden_size=self.hidden_size,
            beam_size=self.beam_size,
            initializer_range=self.initializer_range,
        )
        return config
