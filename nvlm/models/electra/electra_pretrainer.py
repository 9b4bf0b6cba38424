"""ELECTRA pretraining: generator + discriminator with shared embeddings, one forward pass of
replaced token detection per call."""

from __future__ import annotations

import keras
import tensorflow as tf

from nvlm.layers import MaskedLMHead
from nvlm.models.electra.discriminator_head import DiscriminatorHead
from nvlm.models.electra.electra_backbone import ElectraBackbone
from nvlm.models.electra.replaced_tokens import (
    ExampleKeyedDraws,
    mask_inputs,
    sample_tokens,
    scatter_tokens,
    select_positions,
)
from nvlm.models.encoder.backbone import BACKBONE_INPUTS


class ElectraPretrainer(keras.Model):
    """Replaced token detection (Clark et al. 2020, section 2) on unmasked sequences.

    One call:
      1. selects `mask_prob` of the real non-special tokens (dynamic masking: a new choice at
         every step, as the recipe's shards are unmasked) and shows [MASK] at 85% of them;
      2. runs the generator (a small masked LM sharing the embeddings) at the selected
         positions;
      3. samples a replacement for each from the generator's softmax (temperature, Gumbel-max,
         no gradient) and writes them into the ORIGINAL sequence;
      4. runs the discriminator on that sequence; its label per token is
         "the token differs from the original" (a sample equal to the original is not a
         replacement), and padding is masked out.

    Inputs: `input_ids`, `input_mask`, `segment_ids` `[batch, seq]` (ELECTRA shards), and
    optionally `example_positions` int `[batch]`: each row's global position in the training
    stream (`ExampleSource(..., positions=True)`).

    Outputs (float32 logits; the rest int32 / float32 bookkeeping for the losses):
        `mlm_logits` `[batch, P, vocab]`, `masked_lm_positions` / `masked_lm_ids` (original
        tokens) / `masked_lm_weights` `[batch, P]`, `sampled_ids` `[batch, P]`,
        `generator_input_ids` and `discriminator_input_ids` `[batch, seq]`, `rtd_logits` and
        `rtd_labels` `[batch, seq]`, `input_mask` (float32).
        `nvlm.models.electra.pretraining_losses` turns them into the loss and metrics.

    The random draws (positions, [MASK] choice, sampled tokens): with `example_positions`,
    a hash of (`seed`, position, slot) per row (`ExampleKeyedDraws`), so that an example is
    corrupted the same whatever the ranks, micro-batches and accumulation that carry it, and
    differently at its next epoch; without, `self.seed_generator`, a model variable
    checkpointed with the weights. Either way a resumed run continues exactly.

    Args:
        discriminator: the discriminator `ElectraBackbone` (it owns the embeddings).
        generator: the generator `ElectraBackbone`, built with `embeddings=discriminator.
            embeddings`.
        mask_token_id, cls_token_id, sep_token_id: special ids of the vocab.
        max_predictions: selected positions per sequence at most (P).
        mask_prob: fraction of the candidate tokens to select (0.15).
        temperature: generator sampling temperature.
        disallow_correct: never sample the original token.
        seed: seed of the draws (None: the generator's from Keras's global seed, and 0 for
            the keyed draws, which must be the same on every rank).
        **kwargs: standard `keras.Model` arguments.
    """

    def __init__(
        self,
        discriminator: ElectraBackbone,
        generator: ElectraBackbone,
        *,
        mask_token_id: int,
        cls_token_id: int,
        sep_token_id: int,
        max_predictions: int = 20,
        mask_prob: float = 0.15,
        temperature: float = 1.0,
        disallow_correct: bool = False,
        seed: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if generator.embeddings is not discriminator.embeddings:
            raise ValueError("the generator must share the discriminator's embeddings")
        self.discriminator = discriminator
        self.generator = generator
        self.generator_head = MaskedLMHead(
            generator.vocab_size,
            generator.embedding_size,
            token_embedding=discriminator.token_embedding,
            layer_norm_eps=generator.layer_norm_eps,
            initializer_range=generator.initializer_range,
            dtype=discriminator.dtype_policy,
            name="generator_head",
        )
        self.discriminator_head = DiscriminatorHead(
            discriminator.hidden_size,
            initializer_range=discriminator.initializer_range,
            dtype=discriminator.dtype_policy,
            name="discriminator_head",
        )
        self.seed_generator = keras.random.SeedGenerator(seed, name="rtd_seed_generator")
        # Not the generator's state: the trainer offsets that by rank (dropout), and the keyed
        # draws must agree on every rank.
        self.run_seed = 0 if seed is None else int(seed)
        self.mask_token_id = mask_token_id
        self.special_ids = (cls_token_id, sep_token_id)
        self.max_predictions = max_predictions
        self.mask_prob = mask_prob
        self.temperature = temperature
        self.disallow_correct = disallow_correct
        # Variables exist from construction on, as for the functional models (the training
        # loop collects them before the first step).
        self.generator_head.build((None, None, generator.hidden_size), (None, None))
        self.discriminator_head.build((None, None, discriminator.hidden_size))
        self.built = True

    @property
    def embeddings(self):
        return self.discriminator.embeddings

    def call(self, inputs, training=None):
        ids = tf.cast(inputs["input_ids"], tf.int32)
        input_mask = tf.cast(inputs["input_mask"], tf.int32)
        segment_ids = tf.cast(inputs["segment_ids"], tf.int32)
        seed = self.seed_generator
        draws = None
        if "example_positions" in inputs:
            draws = ExampleKeyedDraws(self.run_seed, inputs["example_positions"])

        positions, weights = select_positions(
            ids, input_mask, max_predictions=self.max_predictions, mask_prob=self.mask_prob,
            excluded_ids=self.special_ids, seed=seed, draws=draws,
        )  # fmt: skip
        original = tf.gather(ids, positions, batch_dims=1)
        generator_ids = mask_inputs(
            ids, positions, weights, mask_token_id=self.mask_token_id, seed=seed, draws=draws
        )
        generated = self.generator(
            {"input_ids": generator_ids, "input_mask": input_mask, "segment_ids": segment_ids},
            training=training,
        )
        mlm_logits = self.generator_head(generated["sequence_output"], positions)

        sampled = sample_tokens(
            mlm_logits, original, temperature=self.temperature,
            disallow_correct=self.disallow_correct, seed=seed, draws=draws,
        )  # fmt: skip
        fake_ids = scatter_tokens(ids, positions, weights, sampled)
        mask = tf.cast(input_mask, tf.float32)
        labels = tf.cast(tf.not_equal(fake_ids, ids), tf.float32) * mask
        discriminated = self.discriminator(
            {"input_ids": fake_ids, "input_mask": input_mask, "segment_ids": segment_ids},
            training=training,
        )
        return {
            "mlm_logits": mlm_logits,
            "masked_lm_positions": positions,
            "masked_lm_ids": original,
            "masked_lm_weights": weights,
            "sampled_ids": sampled,
            "generator_input_ids": generator_ids,
            "discriminator_input_ids": fake_ids,
            "rtd_logits": self.discriminator_head(discriminated["sequence_output"]),
            "rtd_labels": labels,
            "input_mask": mask,
        }

    def generator_logits(self, inputs, training=False):
        """The generator's masked-LM logits `[batch, P, vocab]` (float32) on `input_ids` AS
        GIVEN, at `masked_lm_positions` `[batch, P]`: no positions are drawn, nothing is
        masked or sampled, the discriminator does not run. What fill-mask ranks
        (`nvlm predict --task fill-mask`); `call` is the training step."""
        generated = self.generator(
            {k: tf.cast(inputs[k], tf.int32) for k in BACKBONE_INPUTS}, training=training
        )
        positions = tf.cast(inputs["masked_lm_positions"], tf.int32)
        return self.generator_head(generated["sequence_output"], positions)

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, dict):
            keyed = {"example_positions"} & inputs.keys()  # see call: per-example draws
            inputs = {k: inputs[k] for k in (*BACKBONE_INPUTS, *keyed)}
        return super().__call__(inputs, *args, **kwargs)
