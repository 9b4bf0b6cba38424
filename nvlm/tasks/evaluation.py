"""`nvlm eval` of a trained model: one request, one result of figures with units.

    result = evaluate(registry.get("bert"), EvalRequest("mlm", "runs/bert-p1", Path("heldout")))

SQuAD goes through `nvlm.tasks.squad.evaluation`, classification through
`nvlm.tasks.classify.evaluation`; a plugin that resolves its own evaluation
config (Transformer-XL: the eval stage's memory length) through its `run_eval`; every other
task through the plugin's `evaluate` on the model `--init` holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nvlm.errors import UserError


@dataclass(frozen=True)
class EvalRequest:
    """What `nvlm eval` asks for (None: the run's or the preset's setting)."""

    task: str
    init: str
    data: Path
    out_dir: Path | None = None  # squad: predictions.json, nbest_predictions.json, null_odds.json
    null_threshold: float | None = None
    version: str | None = None
    batch_size: int | None = None
    beam_size: int | None = None
    precision: str | None = None
    xla: bool | None = None  # squad: XLA-compile the inference step
    split: str | None = None  # lm: the split of an `nvlm data lm` directory
    preset: str | None = None  # lm: the eval stage of this preset; squad: its squad stage
    sets: tuple[str, ...] = ()
    glue: str | None = None  # classify: the GLUE task of --data (its layout and metrics)
    fields: tuple[str | None, str | None, str | None] = (None, None, None)  # text, pair, label


def evaluate(plugin, request: EvalRequest) -> dict:
    """The figures of `request.task` for the model `request.init` on `request.data`."""
    from nvlm.tasks.squad.evaluation import run_squad_eval

    if request.task == "squad":
        if not request.data.is_file():
            raise UserError(f"--data {request.data} does not exist (pass the SQuAD dev JSON)")
        return run_squad_eval(
            plugin,
            request.init,
            request.data,
            out_dir=request.out_dir,
            null_threshold=request.null_threshold,
            batch_size=request.batch_size,
            version=request.version,
            beam_size=request.beam_size,
            precision=request.precision,
            xla=request.xla,
            preset=request.preset,
            sets=request.sets,
        )
    if request.task == "classify":
        from nvlm.tasks.classify.evaluation import DataFields, run_classify_eval

        return run_classify_eval(
            plugin,
            request.init,
            request.data,
            glue=request.glue,
            fields=DataFields(*request.fields),
            batch_size=request.batch_size,
            precision=request.precision,
            xla=request.xla,
            preset=request.preset,
            sets=request.sets,
        )
    flags = {
        "data.eval_batch_size": request.batch_size,
        "train.precision": request.precision,
        "train.xla": request.xla,
    }
    if plugin.provides("run_eval"):  # resolves its own stage (Transformer-XL: eval memory)
        if request.split not in (None, "valid", "test", "train"):
            raise UserError(f"--split {request.split} is not a split (use valid or test)")
        return plugin.run_eval(
            request.task,
            init=request.init,
            data=request.data,
            split=request.split,
            preset=request.preset,
            sets=list(request.sets),
            flags=flags,
        )
    return _evaluate_loaded(plugin, request, flags)


def _evaluate_loaded(plugin, request: EvalRequest, flags: dict) -> dict:
    """The plugin's own evaluation of the model `--init` holds. Figures that would come from a
    part `--init` lacks (BERT's next-sentence head, only that: `load_model_and_absent`
    refuses the rest) are left out, with a warning."""
    from nvlm.report import warn
    from nvlm.resolve import resolve_training_config
    from nvlm.tasks.inference import load_model_and_absent

    init, sets = request.init, list(request.sets)
    _, net, absent = load_model_and_absent(plugin, init, request.task, sets=sets, flags=flags)
    cfg, _ = resolve_training_config(
        plugin,
        stage="eval",
        preset=None,
        data=request.data,
        init=init,
        config_file=None,
        sets=sets,
        flags=flags,
    )
    result = plugin.evaluate(cfg, net, request.data, request.task)
    # How it ran: the run's settings or the flags (the summary names them, as SQuAD's does).
    result.update(
        precision=cfg.train.precision, xla=cfg.train.xla, batch_size=cfg.data.eval_batch_size
    )
    if absent:
        warn(
            f"--init {init} has no {' and no '.join(absent)}: next-sentence figures left "
            "out (they would come from a random head)"
        )
        result = {k: v for k, v in result.items() if not k.startswith("nsp_")}
    return result
