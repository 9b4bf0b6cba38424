"""`nvlm finetune --task classify` below its options: the label set of the training data, the
training job handed to the launcher (as SQuAD's: same loop, checkpoints, resume), then the
optional evaluation on a dev set by the process that reports.

    summary = finetune_classify(plugin, "bert", ClassifyRequest(Path("train.jsonl"),
                                "runs/bert-p2", Path("runs/sentiment")), LaunchOptions())
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nvlm.errors import UserError
from nvlm.launch.training import LaunchOptions, TrainingJob
from nvlm.tasks.classify.evaluation import DataFields


@dataclass(frozen=True)
class ClassifyRequest:
    """What `nvlm finetune --task classify` asks for (None: the preset's setting)."""

    data: Path  # a labelled JSONL/CSV/TSV, or with `glue` the task's directory or train.tsv
    init: str
    out: Path  # the run directory (created or resumed)
    eval_data: Path | None = None  # the dev set evaluated after the last step
    glue: str | None = None  # a GLUE task: its layout, labels and official metrics
    labels: str | None = None  # --labels a,b,c: the label set and its order
    regression: bool = False
    eval_each_epoch: bool = False  # also evaluate eval_data after each epoch
    fields: DataFields = DataFields()
    preset: str | None = None
    epochs: float | None = None
    precision: str | None = None
    xla: bool | None = None
    sets: tuple[str, ...] = ()
    config: Path | None = None
    resume: bool = True
    overwrite: bool = False
    json_out: bool = False


@dataclass(frozen=True)
class LabelPlan:
    """The head the data asks for: names in id order (() for regression) and the data.* keys."""

    labels: tuple[str, ...]
    regression: bool
    data_flags: dict

    @property
    def flags(self) -> dict:
        return {
            "model.num_labels": 1 if self.regression else len(self.labels),
            "model.labels": self.labels,
            **self.data_flags,
        }


def plan_labels(request: ClassifyRequest) -> LabelPlan:
    """The label set of the training data (GLUE's for `glue`, else `--labels` or the file's in
    first-seen order) and the data keys that read it again. The training file and the dev set
    are read and checked here, before any run directory exists: a bad row, an unknown dev label
    or a label set of one is refused with nothing written."""
    from nvlm.tasks.classify.glue import glue_task, read_glue
    from nvlm.tasks.classify.label_set import LabelSet
    from nvlm.tasks.classify.reader import read_classify
    from nvlm.tasks.classify.task import eval_splits, read_split

    r, f = request, request.fields
    if not r.data.exists():
        raise UserError(f"--data {r.data} does not exist (pass the labelled training file)")
    if r.glue is not None:
        task = glue_task(r.glue)
        if r.labels is not None or r.regression:
            raise UserError(f"--glue {task.name} fixes the labels (drop --labels/--regression)")
        data = {"data.glue_task": task.name}
        train = read_glue(task.name, r.data, "train")
    else:
        if r.labels is not None and r.regression:
            raise UserError("--labels does not apply to --regression (drop one of them)")
        data = {"data.text_field": f.text, "data.pair_field": f.pair, "data.label_field": f.label}
        data = {k: v for k, v in data.items() if v is not None}
        train = read_classify(
            r.data, text_field=f.text or "text", pair_field=f.pair,
            label_field=f.label or "label", regression=r.regression,
            labels=LabelSet.parse(r.labels) if r.labels is not None else None,
        )  # fmt: skip
    names = () if train.regression else train.label_set.names
    if r.eval_data is not None:
        if not r.eval_data.exists():
            raise UserError(f"--eval-data {r.eval_data} does not exist (pass the labelled dev set)")
        probe = _probe_config(data, train.regression, names)
        for split in eval_splits(probe, r.eval_data):
            read_split(probe, r.eval_data, split, train.label_set.source if names else "")
    return LabelPlan(tuple(names), train.regression, data)


def _probe_config(data_flags: dict, regression: bool, names):
    """The config keys `read_split` reads, before the run's config exists."""
    from types import SimpleNamespace

    keys = {k.split(".")[1]: v for k, v in data_flags.items()}
    data = SimpleNamespace(
        glue_task=keys.get("glue_task"), text_field=keys.get("text_field", "text"),
        pair_field=keys.get("pair_field"), label_field=keys.get("label_field", "label"),
    )  # fmt: skip
    model = SimpleNamespace(num_labels=1 if regression else len(names), labels=tuple(names))
    return SimpleNamespace(data=data, model=model)


def check_init_head(plugin, init: str, plan: LabelPlan) -> None:
    """An --init that is already a classifier continues only with the same labels (or, for an
    unnamed head, as many); otherwise one line names both label sets."""
    values = plugin.init_model_values(init)
    if "model.num_labels" not in values:
        return  # an encoder without a classification head: a new head is trained
    theirs, count = tuple(values.get("model.labels") or ()), values["model.num_labels"]
    ours = plan.flags["model.num_labels"]
    same = theirs == plan.labels if theirs else count == ours
    if not same:

        def describe(labels, n):
            return "a regression head" if n == 1 else f"labels ({', '.join(labels) or n})"

        raise UserError(
            f"--init {init} is a classifier of {describe(theirs, count)} but the training data "
            f"has {describe(plan.labels, ours)} (fine-tune its encoder from the checkpoint it "
            "was fine-tuned from, or train on data with its labels)"
        )


def training_job(plugin, model: str, request: ClassifyRequest, plan: LabelPlan) -> TrainingJob:
    """The job `launch_training` runs: how to resolve the config for N processes, how to
    train, and the command line of each launched rank."""
    from nvlm.launch.training import child_command
    from nvlm.resolve import resolve_training_config
    from nvlm.train.run import train_run

    r = request

    def resolve(processes: int | None):
        flags = {
            "train.gpus": processes,
            "train.epochs": r.epochs,
            "train.precision": r.precision,
            "train.xla": r.xla,
            "train.eval_each_epoch": True if r.eval_each_epoch else None,
            # Where every rank (rank 0 evaluates) finds the held-out set while training.
            "data.eval_data": str(Path(r.eval_data).resolve()) if r.eval_data else None,
            **plan.flags,
        }
        cfg, notes = resolve_training_config(
            plugin, stage="classify", preset=r.preset, data=None, init=r.init,
            config_file=r.config, sets=list(r.sets), flags=flags,
        )  # fmt: skip
        if (cfg.train.eval_every or cfg.train.eval_each_epoch) and cfg.data.eval_data is None:
            raise UserError(
                "--eval-each-epoch / train.eval_every evaluate a held-out set while training: "
                "pass --eval-data DEV"
            )
        return cfg, notes

    def train(cfg, resume_run: bool, overwrite_run: bool) -> dict:
        return train_run(
            plugin, cfg, run=r.out, data=r.data, task="classify", init=r.init,
            resume=resume_run, overwrite=overwrite_run,
        )  # fmt: skip

    # A launched rank reads the label set and data keys from RUN/config.yaml.
    child = child_command(
        "finetune", {"model": model, "task": "classify"},
        {"data": r.data, "init": r.init, "out": r.out},
    )  # fmt: skip
    inputs = {"--data": r.data, "--init": r.init, "--eval-data": r.eval_data}
    return TrainingJob(
        child, r.out, resolve, train, r.config, r.resume, r.overwrite, r.json_out, inputs
    )


def finetune_classify(plugin, model: str, request: ClassifyRequest, opts: LaunchOptions):
    """Fine-tune (launching the processes `opts` asks for), then evaluate on `eval_data`.
    Returns the summary (its "eval": the dev figures) in the process that reports, else None
    (a --dry-run, a rank other than rank 0)."""
    from nvlm.launch import ranks
    from nvlm.launch.training import launch_training
    from nvlm.tasks.classify.evaluation import run_classify_eval

    if ranks.is_child():  # RUN/config.yaml holds the label set: nothing to read again
        plan = LabelPlan((), False, {})
    else:
        plan = plan_labels(request)
        check_init_head(plugin, request.init, plan)
    outcome = launch_training(training_job(plugin, model, request, plan), opts)
    if not outcome.reports:
        return None
    summary = outcome.summary
    if request.eval_data is not None:
        summary["eval"] = run_classify_eval(plugin, str(request.out), request.eval_data)
    return summary
