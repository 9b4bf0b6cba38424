"""The SavedModel signature of Transformer-XL (`nvlm convert --to savedmodel --task lm`,
docs/serving.md): one segment of tokens with the memory of the previous ones in, the
log-probabilities of every next word and the next memory out, as `nvlm eval` reads a text.

Inputs:  tokens `[batch, tgt_len]` int32; memories `[batch, n_layer, mem_len, d_model]` float32
         (every layer's states, stacked as nvlm keeps them); mem_valid `[batch]` int32, how many
         of the last memory slots hold real states (0 for the first segment of a text).
Outputs: log_probs `[batch, tgt_len, vocab]` float32 (log p of the word after each token);
         new_memories (the memories' shape) and new_mem_valid `[batch]` (min(mem_valid +
         tgt_len, mem_len)): fed back with the next segment.
The rows of one call are read together (one shared memory position, as in nvlm's evaluation):
their mem_valid must be equal, else the call fails (InvalidArgument).
"""

from __future__ import annotations


def lm_signature(model, *, batch_size: int | None, tgt_len: int, mem_len: int):
    import tensorflow as tf

    specs = {
        "tokens": tf.TensorSpec([batch_size, tgt_len], tf.int32, name="tokens"),
        "memories": tf.TensorSpec(
            [batch_size, model.n_layer, mem_len, model.d_model], tf.float32, name="memories"
        ),
        "mem_valid": tf.TensorSpec([batch_size], tf.int32, name="mem_valid"),
    }

    def fn(inputs):
        mem_valid = inputs["mem_valid"]
        valid = mem_valid[0]
        check = tf.debugging.assert_equal(
            mem_valid, valid, message="every row of one call must have the same mem_valid"
        )
        with tf.control_dependencies([check]):
            hidden, memories = model(inputs["tokens"], inputs["memories"], valid=valid,
                                     training=False)  # fmt: skip
        shape = tf.shape(hidden)
        flat = model.log_probs(tf.reshape(hidden, [-1, model.d_model]))
        return {
            "log_probs": tf.reshape(flat, [shape[0], shape[1], -1]),
            "new_memories": memories,
            "new_mem_valid": tf.minimum(mem_valid + tf.shape(inputs["tokens"])[1], mem_len),
        }

    return specs, fn
