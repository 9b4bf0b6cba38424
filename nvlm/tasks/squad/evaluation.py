"""SQuAD evaluation as `nvlm eval --task squad` and `nvlm finetune --eval-data` run it: a model
on a dev set (EM/F1 with latency, prediction files written), or an existing predictions file
scored like the official script; and the rows of its summary table.

    result = run_squad_eval(plugin, "runs/squad", Path("dev-v1.1.json"), out_dir=None,
                            null_threshold=None, batch_size=None)
    result = score_predictions(Path("dev-v2.0.json"), Path("predictions.json"), None, None)
"""

from __future__ import annotations

from pathlib import Path

from nvlm.tasks.inference import load_model

# Rows of the SQuAD summary, in the order the reference tools print them, with units.
SQUAD_ROWS = [
    ("precision", "precision"),
    ("xla", "XLA"),
    ("batch_size", "batch size (sequences)"),
    ("features_from_cache", "features from the cache"),
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
    precision: str | None = None,
    xla: bool | None = None,
    preset: str | None = None,
    sets: tuple[str, ...] = (),
) -> dict:
    """The figures of the model `init` on the dev set `dev`; prediction files go to `out_dir`
    (default ./squad-eval). Precision, XLA, batch and decoding are the run's (`init` an nvlm
    run) or `preset`'s squad stage, overridden by `sets` and then by the arguments; the
    result names the precision, XLA setting and batch used."""
    from nvlm.tasks.squad.task import beam_size_flags

    flags = {
        "data.eval_batch_size": batch_size,
        "train.precision": precision,
        "train.xla": xla,
        **beam_size_flags(plugin, beam_size),
    }
    if version:
        flags["data.squad_version"] = version
    cfg, model = load_model(
        plugin, init, "squad", sets=sets, flags=flags, preset=preset, stage="squad"
    )
    out_dir = out_dir or Path("squad-eval")
    result = plugin.evaluate(
        cfg, model, dev, "squad", init=init, out_dir=out_dir, null_threshold=null_threshold
    )
    settings = {
        "precision": cfg.train.precision,
        "xla": cfg.train.xla,
        "batch_size": cfg.data.eval_batch_size,
    }
    head = {"task": result.pop("task", "squad"), "version": result.pop("version")}
    return {**head, **settings, **result}


def squad_table_rows(result: dict) -> list[tuple[str, object]]:
    """(label, value) rows of a SQuAD result: timing first, as the reference tools print it."""
    rows = [(label, result[key]) for key, label in SQUAD_ROWS if key in result]
    skip = {k for k, _ in SQUAD_ROWS} | {"task", "files", "version", "null_threshold"}
    rows += [(k, v) for k, v in result.items() if k not in skip and v is not None]
    if result.get("null_threshold") is not None:
        rows.append(("null threshold used", result["null_threshold"]))
    return rows


def score_predictions(
    dev: Path, predictions: Path, null_odds: Path | None, version: str | None
) -> dict:
    """EM/F1 of a predictions.json against `dev` (v2.0: the best threshold from null_odds);
    a question without a prediction scores 0, with a warning."""
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
