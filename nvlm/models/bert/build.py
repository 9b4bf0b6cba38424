"""The BERT model of a task, from a resolved config (what `BertPlugin.build` returns; used
directly by checkpoint I/O, which must not depend on the plugin)."""

from __future__ import annotations

from nvlm.errors import UserError

TASKS = ("pretrain", "mlm", "squad", "classify", "features")


def build(cfg, task: str):
    from nvlm.models.bert.bert_backbone import BertBackbone
    from nvlm.models.bert.bert_pretrainer import BertPretrainer
    from nvlm.models.bert.bert_question_answerer import BertQuestionAnswerer

    backbone = BertBackbone(**cfg.model.to_backbone_kwargs())
    if task in ("pretrain", "mlm"):
        return BertPretrainer(backbone)
    if task == "squad":
        return BertQuestionAnswerer(backbone)
    if task == "classify":
        from nvlm.models.bert.bert_classifier import BertClassifier

        m = cfg.model
        return BertClassifier(backbone, m.num_labels, m.classifier_dropout)
    if task == "features":
        return backbone
    raise UserError(f"BERT has no task {task!r} (tasks: {', '.join(TASKS)})")
