"""`nvlm eval`: evaluate a trained model on held-out data, or score a predictions file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from nvlm.cli.options import JsonFlag, ModelOption, SetOption
from nvlm.errors import UserError

# Rows of the SQuAD summary, in the order the reference tools print them, with units.
SQUAD_ROWS = [
    ("total_inference_time_s", "total inference time (s)"),
    ("time_without_startup_s", "time without start-up (s)"),
    ("sequences_processed", "sequences processed"),
    ("inference_seq_per_s", "inference throughput (sequences/s)"),
    ("latency_avg_ms", "latency average (ms/batch)"),
    ("latency_p50_ms", "latency p50 (ms/batch)"),
    ("latency_p90_ms", "latency p90 (ms/batch)"),
    ("latency_p95_ms", "latency p95 (ms/batch)"),
    ("latency_p99_ms", "latency p99 (ms/batch)"),
]


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


def run_squad_eval(
    plugin,
    init: str,
    dev: Path,
    *,
    out_dir: Path | None,
    null_threshold: float | None,
    batch_size: int | None,
    version: str | None = None,
    beam_size: int | None = None,
) -> dict:
    from nvlm.tasks.squad.task import beam_size_flags

    flags = {"data.eval_batch_size": batch_size, **beam_size_flags(plugin, beam_size)}
    if version:
        flags["data.squad_version"] = version
    cfg, model = load_model(plugin, init, "squad", flags=flags)
    out_dir = out_dir or Path("squad-eval")
    return plugin.evaluate(
        cfg, model, dev, "squad", init=init, out_dir=out_dir, null_threshold=null_threshold
    )


def squad_table_rows(result: dict) -> list[tuple[str, object]]:
    rows = [(label, result[key]) for key, label in SQUAD_ROWS if key in result]
    skip = {k for k, _ in SQUAD_ROWS} | {"task", "files", "version", "null_threshold"}
    rows += [(k, v) for k, v in result.items() if k not in skip and v is not None]
    if result.get("null_threshold") is not None:
        rows.append(("null threshold used", result["null_threshold"]))
    return rows


def evaluate(
    model: ModelOption,
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="mlm (masked LM + NSP on shards) | squad | lm (Transformer-XL perplexity)",
        ),
    ],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="Held-out data: a shard directory (mlm), the SQuAD dev JSON (squad), or an "
            "nvlm data lm directory or text file (lm).",
        ),
    ],
    init: Annotated[
        str | None,
        typer.Option(
            "--init",
            help="An nvlm run or checkpoint, a Hugging Face directory or a Google checkpoint.",
        ),
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="squad: score this predictions.json without a model (like the official script).",
        ),
    ] = None,
    null_odds: Annotated[
        Path | None,
        typer.Option(
            "--null-odds",
            help="squad v2.0 with --predictions: null_odds.json for the best threshold.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="squad: where to write predictions.json, nbest_predictions.json, null_odds.json.",
        ),
    ] = None,
    null_threshold: Annotated[
        float | None,
        typer.Option(
            "--null-threshold",
            help="squad v2.0: answer 'no answer' when null score - best span score exceeds this (BERT default 0.0).",
        ),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="SQuAD version of --data (default: what the file says)."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", min=1, help="Evaluation batch size.")
    ] = None,
    beam_size: Annotated[
        int | None,
        typer.Option(
            "--beam-size",
            help="squad, joint answer heads (electra): start and end positions kept (default 4).",
        ),
    ] = None,
    precision: Annotated[
        str | None, typer.Option("--precision", help="fp32 | tf32 | amp | bf16")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option("--split", help="lm: the split of an nvlm data lm --data directory (test)."),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset", help="lm: settings from this preset's eval stage (default: the run's)."
        ),
    ] = None,
    sets: SetOption = None,
    json_out: JsonFlag = False,
) -> None:
    r"""Evaluate a model (masked-LM accuracy on shards; SQuAD EM/F1 with latency), or score an existing SQuAD predictions file.

    --task mlm needs the pretraining heads: a SQuAD fine-tuned model is refused (evaluate it with --task squad).

    Examples:

        nvlm eval --model bert --task mlm --init runs/bert-p1 --data heldout/

        nvlm eval --model bert --task squad --init runs/squad \
          --data dev-v1.1.json --out runs/squad/eval

        nvlm eval --model bert --task squad --data dev-v2.0.json \
          --predictions predictions.json --null-odds null_odds.json

        nvlm eval --model transformer-xl --task lm --init runs/txl \
          --data data/wt103 --split test
    """
    from nvlm import registry
    from nvlm.report import emit_json, print_table, summary_table

    if task == "squad" and predictions is not None:
        result = score_predictions(data, predictions, null_odds, version)
        print_table(
            summary_table(
                f"SQuAD {result['version']} scores of {predictions}", squad_table_rows(result)
            )
        )
        if json_out:
            emit_json(result)
        return
    if init is None:
        raise UserError(
            "--init is required to evaluate a model (or pass --predictions FILE to "
            "score a predictions file)"
        )
    plugin = registry.get(model)
    if task not in plugin.tasks:
        raise UserError(f"model {model} has no task {task!r} (tasks: {', '.join(plugin.tasks)})")
    if task == "squad":
        if not data.is_file():
            raise UserError(f"--data {data} does not exist (pass the SQuAD dev JSON)")
        result = run_squad_eval(
            plugin,
            init,
            data,
            out_dir=out,
            null_threshold=null_threshold,
            batch_size=batch_size,
            version=version,
            beam_size=beam_size,
        )
        print_table(
            summary_table(f"nvlm eval {model} squad {result['version']}", squad_table_rows(result))
        )
    elif plugin.provides("run_eval"):  # resolves its own stage (Transformer-XL: eval memory)
        if split not in (None, "valid", "test", "train"):
            raise UserError(f"--split {split} is not a split (use valid or test)")
        result = plugin.run_eval(
            task,
            init=init,
            data=data,
            split=split,
            preset=preset,
            sets=sets or [],
            flags={"data.eval_batch_size": batch_size, "train.precision": precision},
        )
        rows = [(k, v) for k, v in result.items() if k not in ("task", "data")]
        print_table(summary_table(f"nvlm eval {model} {task}: {result['data']}", rows))
    else:
        cfg, net, absent = load_model_and_absent(
            plugin,
            init,
            task,
            sets=sets or [],
            flags={"data.eval_batch_size": batch_size, "train.precision": precision},
        )
        from nvlm.resolve import resolve_training_config

        cfg, _ = resolve_training_config(
            plugin,
            stage="eval",
            preset=None,
            data=data,
            init=init,
            config_file=None,
            sets=sets or [],
            flags={"data.eval_batch_size": batch_size, "train.precision": precision},
        )
        result = plugin.evaluate(cfg, net, data, task)
        if absent:  # only what --task mlm may lack (load_model_and_absent refuses the rest)
            from nvlm.report import warn

            warn(
                f"--init {init} has no {' and no '.join(absent)}: next-sentence figures left "
                "out (they would come from a random head)"
            )
            result = {k: v for k, v in result.items() if not k.startswith("nsp_")}
        rows = [(k, v) for k, v in result.items() if k not in ("task", "data")]
        print_table(summary_table(f"nvlm eval {model} {task}", rows))
    if json_out:
        emit_json(result)


def score_predictions(
    dev: Path, predictions: Path, null_odds: Path | None, version: str | None
) -> dict:
    from nvlm.report import warn
    from nvlm.tasks.squad import read_squad
    from nvlm.tasks.squad.metrics import evaluate as score
    from nvlm.tasks.squad.metrics import load_null_odds, load_predictions, missing_predictions

    dataset = read_squad(dev, version, require_answers=False)
    preds = load_predictions(predictions)
    odds = load_null_odds(null_odds) if null_odds is not None else None
    missing = missing_predictions(dataset.gold_answers(), preds)
    if missing:
        warn(
            f"{len(missing)} question(s) have no prediction and score 0 "
            f"(first: {sorted(missing)[0]})"
        )
    result = score(dataset.gold_answers(), preds, dataset.version, odds)
    return {"task": "squad", "version": dataset.version, **result}
