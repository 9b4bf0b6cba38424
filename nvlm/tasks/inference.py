"""A trained model loaded for inference (`nvlm eval`, `nvlm predict`, the evaluation at the end
of `nvlm finetune`): the architecture and the task settings come from `--init`.

    cfg, model = load_model(registry.get("bert"), "runs/squad", "squad")
"""

from __future__ import annotations

import re

from nvlm.errors import UserError


def load_model(plugin, init: str, task: str, *, sets=(), flags=None):
    """(config, model) for inference: the architecture and task settings come from `init`."""
    cfg, model, _ = load_model_and_absent(plugin, init, task, sets=sets, flags=flags)
    return cfg, model


# What a checkpoint may lack and still be evaluated with --task mlm: BERT's NSP figures are
# then left out (a Hugging Face BertForMaskedLM has neither pooler nor NSP head). Any other
# part left at its random initialisation would make the figures meaningless.
def _optional_for_mlm() -> set[str]:
    from nvlm.convert.bert_weights import GROUP_TITLES, NSP, POOLER

    return {GROUP_TITLES[POOLER], GROUP_TITLES[NSP]}


_ABSENT = re.compile(r" has no (.+): it keeps its random initialisation$")


def load_model_and_absent(plugin, init: str, task: str, *, sets=(), flags=None):
    """(config, model, titles of the parts `init` lacks and that kept their random
    initialisation). Refuses a source whose missing parts the task would read."""
    import keras

    from nvlm import config as config_mod
    from nvlm.resolve import resolve_training_config
    from nvlm.train.precision import set_precision
    from nvlm.train.restore import is_nvlm_source, run_dir_of

    flags = dict(flags or {})
    if is_nvlm_source(init):  # the run's own data settings (seq len, stride, SQuAD version)
        run_cfg = config_mod.load(run_dir_of(init))
        for key in ("seq_len", "doc_stride", "max_query_len", "squad_version"):
            flags.setdefault(f"data.{key}", getattr(run_cfg.data, key))
    cfg, _ = resolve_training_config(
        plugin,
        stage="eval",
        preset=None,
        data=None,
        init=init,
        config_file=None,
        sets=list(sets),
        flags=flags,
    )
    set_precision(cfg.train.precision)
    keras.utils.set_random_seed(cfg.train.seed)
    model = plugin.build(cfg, task)
    warnings = plugin.load_init(model, cfg, init, task)
    absent = [m.group(1) for m in map(_ABSENT.search, warnings) if m]
    if task == "squad" and any("span" in w or "squad" in w.lower() for w in warnings):
        raise UserError(
            f"--init {init} has no question-answering head (fine-tune it first: "
            "nvlm finetune --task squad ...)"
        )
    missing = [title for title in absent if title not in _optional_for_mlm()]
    if task == "mlm" and missing:
        raise UserError(
            f"--init {init} has no {' and no '.join(missing)}: --task mlm would score randomly "
            "initialised weights (pass a pretraining run or checkpoint; evaluate a SQuAD "
            "model with --task squad)"
        )
    return cfg, model, absent
