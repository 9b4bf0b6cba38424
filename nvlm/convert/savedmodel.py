"""`nvlm convert RUN DST --to savedmodel`: a TensorFlow SavedModel for TF Serving and Triton.

    summary = export_savedmodel(registry.get("bert"), SavedModelRequest("runs/squad", Path("sm")))

DST is written whole (staged next to it, renamed when complete; docs/serving.md):

    DST/1/saved_model.pb, DST/1/variables/   TF Serving's versioned layout (version 1)
    DST/config.pbtxt                          Triton's model configuration (TensorFlow backend)
    DST/vocab.txt, tokenizer files            what a client needs to make the inputs
    DST/labels.json                           classify: the label names in output order
    DST/.nvlm                                 nvlm's marker (a later --overwrite may replace DST)

The model is loaded as `nvlm eval` loads it (`nvlm.tasks.inference.load_model`: the run's
settings, then --set and flags), built under the requested precision's Keras policy before its
weights are loaded; the plugin says which inputs and outputs a task has (`serving_signature`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nvlm.errors import UserError

VERSION = "1"  # TF Serving serves the highest numbered sub-directory; an export is version 1
SIGNATURE = "serving_default"  # TF Serving's and Triton's default signature key
# --precision -> nvlm's train.precision (fp16 = Keras mixed_float16, nvlm's "amp").
PRECISIONS = {"fp32": "fp32", "bf16": "bf16", "fp16": "amp"}


@dataclass(frozen=True)
class SavedModelRequest:
    """What `nvlm convert --to savedmodel` asks for. `task` None: the run's own task when the
    plugin exports it (a SQuAD run: squad), else the plugin's first serving task. `batch_size`
    None: a dynamic batch dimension. `seq_len` None: the run's data.seq_len."""

    src: str
    dst: Path
    task: str | None = None
    precision: str = "fp32"
    batch_size: int | None = None
    seq_len: int | None = None
    overwrite: bool = False
    sets: tuple[str, ...] = ()


def parse_batch_size(text: str | None) -> int | None:
    """`--batch-size N|dynamic` -> N or None (dynamic)."""
    if text is None or text.strip().lower() == "dynamic":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise UserError(f"--batch-size {text} is not a batch size (give N >= 1, or dynamic)")
    return value


def serving_task(plugin, src: str, task: str | None) -> str:
    """The task to export: `task` checked against what the plugin serves, or the default."""
    tasks = plugin.serving_tasks
    if not tasks:
        raise UserError(f"{plugin.label} has no SavedModel export (nvlm convert --to hf instead)")
    if task is not None:
        if task not in tasks:
            raise UserError(
                f"--task {task} is not a task {plugin.label} exports (use --task {'|'.join(tasks)})"
            )
        return task
    from nvlm import config as config_mod
    from nvlm.train.restore import is_nvlm_source, run_dir_of

    if is_nvlm_source(src):
        stage = config_mod.load(run_dir_of(src)).stage
        if stage in tasks:
            return stage
    return tasks[0]


def export_savedmodel(plugin, request: SavedModelRequest) -> dict[str, Any]:
    """Write the SavedModel of `request` (see the module docstring); returns a summary: dst,
    task, precision, batch_size, seq_len, and the signature's inputs and outputs (name ->
    {dtype, shape}, -1 for an open dimension)."""
    from nvlm.convert.staging import require_empty, staged_directory
    from nvlm.convert.triton import write_triton_config
    from nvlm.outputs import disk_full, is_disk_full

    r = request
    if r.precision not in PRECISIONS:
        raise UserError(f"--precision {r.precision} is not one of {'|'.join(PRECISIONS)}")
    if r.seq_len is not None and r.seq_len < 1:
        raise UserError(f"--seq-len {r.seq_len} must be at least 1")
    task = serving_task(plugin, r.src, r.task)
    dst = Path(r.dst)
    require_empty(dst, r.overwrite)
    model_fn, cfg = _load(plugin, r, task)
    seq_len = cfg.data.seq_len
    specs, fn = plugin.serving_signature(
        cfg, model_fn, task, batch_size=r.batch_size, seq_len=seq_len
    )
    concrete = _concrete_function(specs, fn)
    inputs = {name: _describe(spec) for name, spec in specs.items()}
    outputs = {name: _describe(spec) for name, spec in concrete.structured_outputs.items()}
    try:
        with staged_directory(dst) as tmp:
            _save(model_fn, concrete, tmp / VERSION)
            assets = plugin.write_serving_assets(cfg, r.src, tmp)
            if task == "classify" and cfg.model.num_labels > 1:
                assets.append(_write_labels(cfg, tmp))
            write_triton_config(
                tmp / "config.pbtxt", name=dst.name, inputs=inputs, outputs=outputs,
                batch_size=r.batch_size, max_batch_size=cfg.data.eval_batch_size,
            )  # fmt: skip
    except OSError as exc:  # the staging directory is gone already; a full disk is one line
        if is_disk_full(exc):
            raise disk_full(dst) from exc
        raise
    return {
        "src": str(r.src),
        "dst": str(dst),
        "to": "savedmodel",
        "model": plugin.name,
        "task": task,
        "precision": r.precision,
        "batch_size": r.batch_size or "dynamic",
        "seq_len": seq_len,
        "signature": SIGNATURE,
        "inputs": inputs,
        "outputs": outputs,
        "files": [f"{VERSION}/saved_model.pb", f"{VERSION}/variables/", "config.pbtxt", *assets],
    }


def _load(plugin, r: SavedModelRequest, task: str):
    """(model, config) as `nvlm eval` loads them, under the export's precision and length."""
    from nvlm import config as config_mod
    from nvlm.tasks.inference import load_model_and_absent

    given = set(config_mod.parse_sets(r.sets))
    flags = {k: v for k, v in plugin.serving_settings(r.src).items() if k not in given}
    flags["train.precision"] = PRECISIONS[r.precision]
    if r.seq_len is not None:
        flags["data.seq_len"] = r.seq_len
        if "data.max_predictions" not in given:
            # No exported task reads the masking budget; it must only fit the length.
            budget = flags.get("data.max_predictions", config_mod.DataConfig().max_predictions)
            flags["data.max_predictions"] = min(budget, r.seq_len)
    cfg, model, absent = load_model_and_absent(plugin, r.src, task, sets=r.sets, flags=flags)
    if task == "classify":  # a head at its random initialisation would serve nonsense
        from nvlm.tasks.classify.prediction import require_head

        require_head(str(r.src), absent)
    return model, cfg


def _write_labels(cfg, directory: Path) -> str:
    """DST/labels.json, {"labels": [...]}: the names of the logits' columns, in order (a
    client's id -> label map; LABEL_i when the run names none)."""
    from nvlm.outputs import write_json
    from nvlm.tasks.classify.prediction import label_names

    write_json(directory / "labels.json", {"labels": list(label_names(cfg.model))})
    return "labels.json"


def _concrete_function(specs: dict, fn):
    """The signature function: named inputs, float outputs as float32 (what clients of any
    precision read; the integer ones, e.g. beam indices, as they are)."""
    import tensorflow as tf

    def serve(inputs):
        out = fn(inputs)
        return {k: tf.cast(v, tf.float32) if v.dtype.is_floating else v for k, v in out.items()}

    return tf.function(serve).get_concrete_function(specs)


def _save(model, concrete, directory: Path) -> None:
    import tensorflow as tf

    root = tf.Module()
    root.model = model  # tracks the variables the signature reads
    tf.saved_model.save(root, str(directory), signatures={SIGNATURE: concrete})


def _describe(spec) -> dict[str, Any]:
    return {
        "dtype": spec.dtype.name,
        "shape": [-1 if d is None else int(d) for d in spec.shape.as_list()],
    }
