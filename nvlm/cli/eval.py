"""`nvlm eval`: evaluate a trained model on held-out data, or score a predictions file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.classify_options import GlueOption, LabelFieldOption, PairFieldOption, TextFieldOption
from nvlm.cli.options import (
    BatchSizeOption,
    BeamSizeOption,
    DataOption,
    InitOption,
    JsonFlag,
    NullThresholdOption,
    OptionalModelOption,
    OutDir,
    PrecisionOption,
    PresetOption,
    SetOption,
    SquadVersionOption,
    XlaOption,
)
from nvlm.errors import UserError

TaskOption = Annotated[
    str,
    typer.Option(
        "--task",
        help="mlm (masked LM + NSP on shards) | squad | classify (GLUE or labelled file) | lm "
        "(Transformer-XL perplexity)",
    ),
]
PredictionsOption = Annotated[
    Path | None,
    typer.Option(
        "--predictions",
        help="squad: score this predictions.json without a model (like the official script).",
    ),
]
NullOddsOption = Annotated[
    Path | None,
    typer.Option(
        "--null-odds",
        help="squad v2.0 with --predictions: null_odds.json for the best threshold.",
    ),
]
SplitOption = Annotated[
    str | None,
    typer.Option("--split", help="lm: the split of an nvlm data lm --data directory (test)."),
]


def evaluate(
    task: TaskOption,
    data: DataOption,
    model: OptionalModelOption = None,
    init: InitOption = None,
    predictions: PredictionsOption = None,
    null_odds: NullOddsOption = None,
    out: OutDir = None,
    null_threshold: NullThresholdOption = None,
    version: SquadVersionOption = None,
    batch_size: BatchSizeOption = None,
    beam_size: BeamSizeOption = None,
    precision: PrecisionOption = None,
    xla: XlaOption = None,
    split: SplitOption = None,
    glue: GlueOption = None,
    text_field: TextFieldOption = None,
    pair_field: PairFieldOption = None,
    label_field: LabelFieldOption = None,
    preset: PresetOption = None,
    sets: SetOption = None,
    json_out: JsonFlag = False,
) -> None:
    r"""Evaluate a model (masked-LM accuracy on shards; SQuAD EM/F1 or classification scores with latency), or score an existing SQuAD predictions file.

    --task mlm needs the pretraining heads: a SQuAD fine-tuned model is refused (evaluate it with --task squad). --task squad reads the SQuAD version from --data unless --version says it, and writes predictions.json, nbest_predictions.json and null_odds.json to --out (./squad-eval without it); precision, XLA, batch and decoding (--set model.max_answer_len=N, model.n_best, model.null_threshold, model.beam_size) are the run's or --preset's, and the summary names them. --model: default, what --init is. --task lm takes its settings from the run, or from the eval stage of --preset. --task classify: GLUE's official metrics (--glue TASK, or a run fine-tuned with --glue; MNLI's directory scores dev_matched and dev_mismatched), else accuracy, macro-F1 and the confusion matrix (regression: Pearson, Spearman, MSE); docs/classification.md.

    Examples:

        nvlm eval --model bert --task mlm --init runs/bert-p1 --data heldout/

        nvlm eval --task squad --init runs/squad --data dev-v1.1.json \
          --out runs/squad/eval --precision bf16 --xla

        nvlm eval --task squad --data dev-v2.0.json \
          --predictions predictions.json --null-odds null_odds.json

        nvlm eval --task classify --init runs/sst2 --data glue_data/SST-2 \
          --glue sst2 --precision bf16 --json

        nvlm eval --model transformer-xl --task lm --init runs/txl \
          --data data/wt103 --split test
    """
    from nvlm.report import emit_json, print_table, summary_table
    from nvlm.tasks.evaluation import EvalRequest
    from nvlm.tasks.evaluation import evaluate as evaluate_model
    from nvlm.tasks.squad.evaluation import score_predictions, squad_table_rows

    if task == "squad" and predictions is not None:
        result = score_predictions(data, predictions, null_odds, version)
        title = f"SQuAD {result['version']} scores of {predictions}"
        rows = squad_table_rows(result)
    else:
        model, plugin = _plugin(model, task, init)
        request = EvalRequest(
            task,
            init,
            data,
            out_dir=out,
            null_threshold=null_threshold,
            version=version,
            batch_size=batch_size,
            beam_size=beam_size,
            precision=precision,
            xla=xla,
            split=split,
            glue=glue,
            fields=(text_field, pair_field, label_field),
            preset=preset,
            sets=tuple(sets or ()),
        )
        result = evaluate_model(plugin, request)
        title, rows = _table(plugin, model, task, result)
    print_table(summary_table(title, rows))
    if json_out:
        emit_json(result)


def _plugin(model: str | None, task: str, init: str | None):
    """(model name, plugin) that evaluates `task`, once the options say there is a model to
    evaluate: --model, or the model --init is."""
    from nvlm import registry
    from nvlm.tasks.inference import model_of_init

    if init is None:
        raise UserError(
            "--init is required to evaluate a model (or pass --predictions FILE to "
            "score a predictions file)"
        )
    model = model_of_init(init, model)
    plugin = registry.get(model)
    if task not in plugin.tasks:
        raise UserError(f"model {model} has no task {task!r} (tasks: {', '.join(plugin.tasks)})")
    return model, plugin


def _table(plugin, model: str, task: str, result: dict) -> tuple[str, list]:
    """The title and rows of the summary table."""
    from nvlm.tasks.squad.evaluation import squad_table_rows

    if task == "squad":
        return f"nvlm eval {model} squad {result['version']}", squad_table_rows(result)
    if task == "classify":
        from nvlm.tasks.classify.evaluation import classify_table_rows

        title = f"nvlm eval {model} classify {result['glue_task'] or result['data']}"
        return title, classify_table_rows(result)
    rows = [(k, v) for k, v in result.items() if k not in ("task", "data")]
    if plugin.provides("run_eval"):  # its own loop names what it read (Transformer-XL: a split)
        return f"nvlm eval {model} {task}: {result['data']}", rows
    return f"nvlm eval {model} {task}", rows
