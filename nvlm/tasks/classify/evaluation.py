"""Classification evaluation as `nvlm eval --task classify` and `nvlm finetune --task classify
--eval-data` run it: a fine-tuned model on a dev set (GLUE's official metrics, or accuracy,
macro-F1 and the confusion matrix, or Pearson/Spearman/MSE for regression) with latency and
throughput; and the rows of its summary table.

    result = run_classify_eval(plugin, "runs/sst2", Path("glue_data/SST-2"), glue="sst2")
    rows = classify_table_rows(result)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nvlm.errors import UserError
from nvlm.tasks.squad.evaluation import SQUAD_ROWS

# How it ran and how fast, in SQuAD eval's order and units (its cache row aside).
_RUN_ROWS = [(k, label) for k, label in SQUAD_ROWS if k != "features_from_cache"]
# The data keys an nvlm classify run carries to its evaluation (a flag overrides each).
_RUN_DATA = ("data.glue_task", "data.text_field", "data.pair_field", "data.label_field")


@dataclass(frozen=True)
class DataFields:
    """How a labelled file names its fields (None: the run's, else text/text_pair/label)."""

    text: str | None = None
    pair: str | None = None
    label: str | None = None


def run_classify_eval(
    plugin,
    init: str,
    data: Path,
    *,
    glue: str | None = None,
    fields: DataFields = DataFields(),
    batch_size: int | None = None,
    precision: str | None = None,
    xla: bool | None = None,
    preset: str | None = None,
    sets: tuple[str, ...] = (),
) -> dict:
    """The figures of the classifier `init` on `data` (a labelled file, or with `glue` / a run
    fine-tuned on GLUE, the task's dev file or directory). Precision, XLA and batch are the
    run's (or `preset`'s classify stage), overridden by `sets` and then by the arguments; the
    result names the ones used."""
    from nvlm.tasks.inference import load_model_and_absent

    if not Path(data).exists():
        raise UserError(f"--data {data} does not exist (pass the labelled dev file)")
    flags = {
        "data.eval_batch_size": batch_size,
        "train.precision": precision,
        "train.xla": xla,
        **_data_flags(init, glue, fields),
    }
    cfg, model, absent = load_model_and_absent(
        plugin, init, "classify", sets=sets, flags=flags, preset=preset, stage="classify"
    )
    if any("classification head" in title for title in absent):
        raise UserError(
            f"--init {init} has no classification head (fine-tune it first: "
            "nvlm finetune --task classify ...)"
        )
    check_glue_labels(cfg)
    result = plugin.evaluate(cfg, model, Path(data), "classify", init=init)
    settings = {
        "precision": cfg.train.precision,
        "xla": cfg.train.xla,
        "batch_size": cfg.data.eval_batch_size,
    }
    head = {k: result.pop(k) for k in ("task", "glue_task", "data")}
    return {**head, **settings, **result}


def _data_flags(init: str, glue: str | None, fields: DataFields) -> dict:
    """data.* flags: the run's GLUE task and field names (an nvlm run), then the options."""
    from nvlm import config as config_mod
    from nvlm.train.restore import is_nvlm_source, run_dir_of

    flags: dict = {}
    if is_nvlm_source(init):
        run_cfg = config_mod.load(run_dir_of(init))
        for key in _RUN_DATA:
            flags[key] = getattr(run_cfg.data, key.split(".")[1], None)
    if glue is not None:
        from nvlm.tasks.classify.glue import glue_task

        flags["data.glue_task"] = glue_task(glue).name
    given = {"data.text_field": fields.text, "data.pair_field": fields.pair,
             "data.label_field": fields.label}  # fmt: skip
    flags.update({k: v for k, v in given.items() if v is not None})
    return {k: v for k, v in flags.items() if v is not None}


def check_glue_labels(cfg) -> None:
    """A GLUE evaluation needs a head of the task's labels, in the task's order."""
    from nvlm.tasks.classify.glue import glue_task
    from nvlm.tasks.classify.task import is_regression, label_set

    if not cfg.data.glue_task:
        return
    task = glue_task(cfg.data.glue_task)
    if task.regression != is_regression(cfg) or (
        not task.regression and label_set(cfg).names != task.labels
    ):
        has = "a regression head" if is_regression(cfg) else f"labels {label_set(cfg).names}"
        wants = "a regression head" if task.regression else f"labels {task.labels}"
        raise UserError(
            f"GLUE {task.name} needs {wants}, but the model has {has} (evaluate a model "
            f"fine-tuned with --glue {task.name})"
        )


def classify_table_rows(result: dict) -> list[tuple[str, object]]:
    """(label, value) rows of a classification result: how it ran and timing first, then the
    scores (in %; MSE unscaled), a set's name after each score when there are several (MNLI)."""
    rows = [(label, result[key]) for key, label in _RUN_ROWS if key in result]
    if "examples" in result:
        rows.insert(3, ("examples", result["examples"]))
    skip = {k for k, _ in _RUN_ROWS} | {"task", "glue_task", "data", "examples"}
    for key, value in result.items():
        if key in skip:
            continue
        if isinstance(value, dict) and "confusion_matrix" not in key and "per_class" not in key:
            if key.startswith("dev"):  # one dev set of several (MNLI matched / mismatched)
                rows += _score_rows(value, f" ({key})")
            continue
        rows += _score_rows({key: value}, "")
    return rows


def _score_rows(scores: dict, suffix: str) -> list[tuple[str, object]]:
    rows = []
    for key, value in scores.items():
        if key == "confusion_matrix":
            for name, row in zip(value["labels"], value["rows"], strict=True):
                rows.append((f"confusion {name}{suffix} (gold -> predicted)", row))
        elif key == "per_class":
            for name, figures in value.items():
                rows.append((f"f1 {name}{suffix} (%)", round(figures["f1"], 2)))
        elif isinstance(value, float):
            unit = "" if key == "mse" else " (%)"
            rows.append((f"{key.replace('_', ' ')}{suffix}{unit}", round(value, 2)))
    return rows
