"""A trained model loaded for inference (`nvlm eval`, `nvlm predict`, the evaluation at the end
of `nvlm finetune`): the architecture and the task settings come from `--init`.

    cfg, model = load_model(registry.get("bert"), "runs/squad", "squad")
"""

from __future__ import annotations

import re

from nvlm.errors import UserError


def load_model(plugin, init: str, task: str, *, sets=(), flags=None, preset=None, stage="eval"):
    """(config, model) for inference: the architecture and task settings come from `init`,
    precision, XLA, batch and decoding from the run `init` is (or from `preset`'s `stage`),
    each overridden by `sets` and `flags`."""
    cfg, model, _ = load_model_and_absent(
        plugin, init, task, sets=sets, flags=flags, preset=preset, stage=stage
    )
    return cfg, model


# What inference takes from the run it loads (a --set or flag overrides each): the shapes its
# features were made with, how it ran (precision, XLA, inference batch: the run's preset had
# them) and how its answers are decoded (the model.* decoding keys its config has).
_RUN_DATA = (
    "data.seq_len",
    "data.max_predictions",
    "data.doc_stride",
    "data.max_query_len",
    "data.squad_version",
)
_RUN_RUNTIME = ("train.precision", "train.xla", "data.eval_batch_size")
_RUN_DECODING = ("n_best", "max_answer_len", "null_threshold", "beam_size")


def run_settings(plugin, run_cfg, *, with_runtime: bool = True) -> dict:
    """The dotted config keys inference reuses from a run's config (`with_runtime=False`: not
    precision, XLA and batch, which an explicit --preset gives instead)."""
    import dataclasses

    keys = _RUN_DATA + (_RUN_RUNTIME if with_runtime else ())
    values = {k: getattr(getattr(run_cfg, k.split(".")[0]), k.split(".")[1]) for k in keys}
    fields = {f.name for f in dataclasses.fields(plugin.config_cls)}
    for name in _RUN_DECODING:
        if name in fields and hasattr(run_cfg.model, name):  # an older run may lack the key
            values[f"model.{name}"] = getattr(run_cfg.model, name)
    return values


# What a checkpoint may lack and still be evaluated with --task mlm: BERT's NSP figures are
# then left out (a Hugging Face BertForMaskedLM has neither pooler nor NSP head). Any other
# part left at its random initialisation would make the figures meaningless.
def _optional_for_mlm() -> set[str]:
    from nvlm.convert.bert_weights import GROUP_TITLES, NSP, POOLER

    return {GROUP_TITLES[POOLER], GROUP_TITLES[NSP]}


_ABSENT = re.compile(r" has no (.+): it keeps its random initialisation$")


# Why a source without all of the "mlm" model's parts is refused, and what to pass instead.
MLM_REFUSAL = (
    "--task mlm would score randomly initialised weights (pass a pretraining run or "
    "checkpoint; evaluate a SQuAD model with --task squad)"
)


def load_model_and_absent(
    plugin, init: str, task: str, *, sets=(), flags=None, preset=None, stage="eval",
    mlm_refusal: str = MLM_REFUSAL,
):  # fmt: skip
    """(config, model, titles of the parts `init` lacks and that kept their random
    initialisation). Refuses a source whose missing parts the task would read (for task
    "mlm": "--init SRC has no PART: `mlm_refusal`"). `preset`: the hardware preset whose
    `stage` gives precision, XLA and batch (else the run's, else the defaults)."""
    import keras

    from nvlm import config as config_mod
    from nvlm.resolve import resolve_training_config
    from nvlm.train.precision import set_precision
    from nvlm.train.restore import is_nvlm_source, run_dir_of

    flags = dict(flags or {})
    if is_nvlm_source(init):
        given = set(config_mod.parse_sets(sets)) | {k for k, v in flags.items() if v is not None}
        run_cfg = config_mod.load(run_dir_of(init))
        for key, value in run_settings(plugin, run_cfg, with_runtime=preset is None).items():
            if key not in given:
                flags[key] = value
    cfg, _ = resolve_training_config(
        plugin,
        stage=stage if preset is not None else "eval",
        preset=preset,
        data=None,
        init=init,
        config_file=None,
        sets=list(sets),
        flags=flags,
    )
    # Before the model is built: its layers take their dtype from the global policy.
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
        raise UserError(f"--init {init} has no {' and no '.join(missing)}: {mlm_refusal}")
    return cfg, model, absent


def model_of_init(init: str | None, explicit: str | None) -> str:
    """The model name (`registry.canonical`) of a command's `--model` and `--init`: the one
    `init` identifies (an nvlm run records it in config.yaml; a Hugging Face directory has
    `model_type` in config.json; a Google TF1 checkpoint is BERT), which an explicit `--model`
    must match. A source nvlm cannot identify needs `--model` (a plugin may read kinds of its
    own: then the explicit name is taken as it is).

        model_of_init("runs/squad", None)         # "bert"
        model_of_init("hf/electra-small", "bert")  # UserError: --init is an electra model
    """
    from nvlm.registry import canonical

    detected = None
    if init is not None:
        try:
            detected = _model_of_source(init)
        except UserError:
            if explicit is None:
                raise
    if explicit is None:
        if detected is None:
            raise UserError(
                "--model is required"
                + (f": cannot tell which model --init {init} is" if init else "")
                + f" (pass --model {_known_models()})"
            )
        return detected
    if detected is not None and canonical(explicit) != detected:
        raise UserError(
            f"--model {explicit} does not match --init {init}, which is a {detected} model "
            f"(drop --model, or pass --model {detected})"
        )
    return canonical(explicit)


def _known_models() -> str:
    from nvlm.registry import plugins

    return "|".join(sorted(plugins()))


def _model_of_source(init: str) -> str | None:
    """The model name `init` records, or None when it records none; UserError for a path that
    is no checkpoint nvlm knows, or a Hugging Face model of a type nvlm has no plugin for."""
    from pathlib import Path

    from nvlm import config as config_mod
    from nvlm import outputs
    from nvlm.convert import detect_source
    from nvlm.registry import canonical, plugins
    from nvlm.train.restore import run_dir_of

    path = Path(init)
    hf_config = path / "config.json"
    if path.is_dir() and (path / "discriminator" / "config.json").is_file():
        hf_config = path / "discriminator" / "config.json"  # an ELECTRA pair (RUN/hf)
    elif detect_source(path) == "google":
        return "bert"  # Google's TF1 checkpoints read here are BERT's (ELECTRA's are refused)
    elif not hf_config.is_file():  # an nvlm run or checkpoint
        return canonical(str(config_mod.load(run_dir_of(path)).model_name))
    model_type = outputs.read_json(hf_config, "Hugging Face config").get("model_type")
    if model_type is None:
        return None
    name = canonical(str(model_type))
    if name not in plugins():
        raise UserError(
            f"--init {init} is a Hugging Face {model_type!r} model; nvlm reads "
            f"{', '.join(sorted(plugins()))} ones"
        )
    return name
