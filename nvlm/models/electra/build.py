"""The ELECTRA model of a task, from a resolved config (what `ElectraPlugin.build` returns;
used directly by checkpoint I/O, which must not depend on the plugin)."""

from __future__ import annotations

from nvlm.errors import UserError

TASKS = ("pretrain", "mlm", "squad", "classify", "features")


def build(cfg, task: str):
    from nvlm.models.electra.electra_backbone import ElectraBackbone

    m = cfg.model
    if task in ("pretrain", "mlm"):
        from nvlm.models.electra.electra_pretrainer import ElectraPretrainer

        disc = ElectraBackbone(**m.backbone_kwargs(), name="discriminator")
        gen = ElectraBackbone(
            **m.backbone_kwargs("generator"), embeddings=disc.embeddings, name="generator"
        )
        return ElectraPretrainer(
            disc,
            gen,
            mask_token_id=m.mask_token_id,
            cls_token_id=m.cls_token_id,
            sep_token_id=m.sep_token_id,
            max_predictions=cfg.data.max_predictions,
            mask_prob=cfg.data.masked_lm_prob,
            temperature=m.temperature,
            disallow_correct=m.disallow_correct,
            seed=cfg.train.seed,
            name="electra_pretrainer",
        )
    backbone = ElectraBackbone(**m.backbone_kwargs(), name="discriminator")
    if task == "squad":
        if m.qa_head == "simple":
            # BERT's span head (one dense layer, 2 outputs) fits any backbone with a
            # sequence_output; it is also Hugging Face's ElectraForQuestionAnswering.
            from nvlm.models.bert.bert_question_answerer import BertQuestionAnswerer

            return BertQuestionAnswerer(backbone, name="electra_span_answerer")
        from nvlm.models.electra.electra_question_answerer import ElectraQuestionAnswerer

        return ElectraQuestionAnswerer(backbone, head_size=m.qa_hidden_size, beam_size=m.beam_size)
    if task == "classify":
        from nvlm.models.electra.electra_classifier import ElectraClassifier

        return ElectraClassifier(backbone, m.num_labels, m.classifier_dropout)
    if task == "features":
        return backbone
    raise UserError(f"ELECTRA has no task {task!r} (tasks: {', '.join(TASKS)})")
