"""Model plugins and their discovery.

Built-in models register through the same entry-point group an outside package would use
(`[project.entry-points."nvlm.models"]` in pyproject.toml), so a third-party model is a
`pip install` away and is treated exactly like BERT.
"""

from __future__ import annotations

import abc
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

from nvlm.errors import UserError

GROUP = "nvlm.models"


class ModelPlugin(abc.ABC):
    """What the commands ask of a model. A plugin subclasses this, sets the class attributes,
    implements `build` and `flops_per_token`, and overrides what its tasks need; every other
    method has a working default (a one-line refusal naming the model, or nothing to do), so no
    caller has to ask whether a plugin has a method. docs/architecture.md has the checklist.
    """

    name: ClassVar[str]  # what users type: "bert", "electra", "transformer-xl"
    title: ClassVar[str] = ""  # in messages: "BERT" (default: the name)
    config_cls: ClassVar[type]  # frozen dataclass of the model.* keys (with `size`, `dropout`)
    sizes: ClassVar[dict[str, dict[str, Any]]] = {}  # size presets: {"tiny": {field: value}}
    tasks: ClassVar[tuple[str, ...]] = ()  # e.g. ("pretrain", "mlm", "squad", "features")
    # Encoders `nvlm predict --task features --part PART` chooses among (ELECTRA: discriminator,
    # generator); `build` and `load_init` then get the task "features:PART". Empty: one encoder.
    encoder_parts: ClassVar[tuple[str, ...]] = ()
    metric_units: ClassVar[dict[str, str]] = {}  # units of the pretraining metrics it logs
    shard_kind: ClassVar[str | None] = None  # the manifest `model` of the shards it trains on
    null_threshold: ClassVar[float] = 0.0  # SQuAD v2.0 default no-answer threshold
    train_stage: ClassVar[str | None] = None  # preset stage of `nvlm pretrain` without phases
    eval_stage: ClassVar[str | None] = None  # preset stage of evaluation and prediction
    # Tasks `nvlm convert --to savedmodel` exports; the first is the default for a run whose
    # stage is none of them (e.g. a pretraining run).
    serving_tasks: ClassVar[tuple[str, ...]] = ()

    @property
    def label(self) -> str:
        return self.title or self.name

    # -- the model ------------------------------------------------------------------------
    @abc.abstractmethod
    def build(self, cfg: Any, task: str) -> Any:
        """The `keras.Model` of `task` for a resolved config (random weights)."""

    @abc.abstractmethod
    def flops_per_token(self, cfg: Any, seq_len: int, task: str = "pretrain") -> float:
        """Training FLOPs (forward + backward) per token of `task`: the numerator of MFU."""

    def pretrain_stage(self, phase: int) -> str:
        """The preset stage `nvlm pretrain --phase N` resolves."""
        return self.train_stage or f"pretrain_phase{phase}"

    # -- data and training ------------------------------------------------------------------
    def data_overrides(self, data: Path) -> tuple[Any, dict[str, Any]]:
        """(data info, {dotted key: value}) that the data directory fixes in the config (vocab
        size, sequence length), checked before a run directory exists."""
        raise UserError(f"{self.label} reads no pretraining data directory")

    def train_spec(self, cfg, model, data: Path, task: str, world, *, run=None, init=None):
        """The `nvlm.train.trainer.TrainSpec` of `task`: loss, batches from a global position,
        tokens and FLOPs per example."""
        raise UserError(f"{self.label} cannot train task {task!r}")

    def write_assets(self, cfg, run: Path, data: Path, init: str | None, task: str) -> None:
        """Copy what makes RUN a self-contained `--init` source (vocab, casing). Default: none."""
        return None

    def finish_run(self, cfg, model, run: Path, task: str) -> list[str]:
        """After a run reached its last step (rank 0): extra exports; returns lines to print."""
        return []

    # -- checkpoints ------------------------------------------------------------------------
    def init_model_values(self, src: str) -> dict[str, Any]:
        """The architecture of checkpoint `src` as dotted `model.*` keys (default: none)."""
        return {}

    def load_init(self, model, cfg, src: str, task: str) -> list[str]:
        """Load the weights of `src` into `model`; returns warnings (heads not in `src`)."""
        raise UserError(f"{self.label} cannot load --init {src}")

    def text_settings(self, src: str) -> tuple[Any, bool]:
        """(vocab.txt path or None, lowercase) of a checkpoint source."""
        return None, True

    def convert(self, src, dst, *, to: str, overwrite: bool = False, part: str | None = None,
                sets=()):  # fmt: skip
        """Convert a checkpoint (`to`: "hf" or "nvlm"); returns (written path, warnings).
        `sets`: --set overrides of the config of the run `to="nvlm"` writes."""
        raise UserError(f"{self.label} has no checkpoint conversion")

    # -- serving (nvlm convert --to savedmodel; docs/serving.md) -----------------------------
    def serving_settings(self, src: str) -> dict[str, Any]:
        """Dotted config keys a SavedModel export of `src` takes from it beyond what inference
        takes (Transformer-XL: the run's mem_len). Default: none."""
        return {}

    def serving_signature(self, cfg, model, task: str, *, batch_size: int | None, seq_len: int):
        """The `serving_default` of a SavedModel of `task`: `({input name: tf.TensorSpec},
        fn)`, `fn({name: tensor}) -> {output name: tensor}` (the caller casts floating outputs
        to float32). `batch_size` None leaves the batch dimension open."""
        raise UserError(f"{self.label} has no SavedModel export")

    def write_serving_assets(self, cfg, src: str, directory: Path) -> list[str]:
        """Write what a SavedModel's clients need to make its inputs (vocab.txt, tokenizer
        files) into `directory`; returns the file names written. Default: none."""
        return []

    # -- evaluation and prediction -------------------------------------------------------------
    def evaluate(self, cfg, model, data: Path, task: str, *, init=None, out_dir=None,
                 null_threshold=None, progress=None) -> dict[str, Any]:  # fmt: skip
        """Figures of `task` on `data` (each name carrying its unit)."""
        raise UserError(f"{self.label} has no evaluation of task {task!r}")

    def squad_head(self, cfg) -> Any:
        """None for the start/end span head, or the plugin's own SQuAD loss and decoder."""
        return None

    def squad_null_threshold(self, cfg) -> float:
        """The SQuAD v2.0 default threshold for this config."""
        return self.null_threshold

    # Capabilities: a plugin that has them overrides these (`provides` says which it has).
    def run_eval(self, task: str, *, init: str, data: Path, split=None, preset=None, sets=(),
                 flags=None) -> dict[str, Any]:  # fmt: skip
        """Evaluation that resolves its own config (Transformer-XL: the eval stage's memory)."""
        raise UserError(f"{self.label} evaluates through the common path")

    def language_model(self, init: str, *, preset=None, sets=(), flags=None) -> Any:
        """An object with next_words / generate / score (`nvlm predict` on a language model)."""
        raise UserError(f"{self.label} is not a language model")

    def masked_lm_logits(self, model, inputs: dict) -> Any:
        """The masked-LM logits `[batch, P, vocab]` (float32) of `model` (built for task "mlm",
        weights loaded) at `inputs["masked_lm_positions"]`, deterministic: nothing masked or
        sampled beyond what `inputs["input_ids"]` shows (`nvlm predict --task fill-mask`)."""
        raise UserError(f"{self.label} has no masked-LM head to fill in masked tokens with")

    def provides(self, capability: str) -> bool:
        """Whether this plugin overrides the capability `run_eval`, `language_model` or
        `masked_lm_logits`."""
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}")
        return getattr(type(self), capability) is not getattr(ModelPlugin, capability)


CAPABILITIES = ("run_eval", "language_model", "masked_lm_logits")


_PLUGINS: dict[str, Any] | None = None


def canonical(name: str) -> str:
    """The one spelling of a model name: what users type (`transformer-xl`). YAML section keys
    use `section_key`."""
    return name.strip().lower().replace("_", "-")


def section_key(name: str) -> str:
    """A model's key in preset and config YAML (`transformer_xl`: a valid identifier)."""
    return canonical(name).replace("-", "_")


def plugins() -> dict[str, Any]:
    """All installed model plugins by name (loaded once)."""
    global _PLUGINS
    if _PLUGINS is None:
        found: dict[str, Any] = {}
        for ep in entry_points(group=GROUP):
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, ModelPlugin)):
                raise UserError(
                    f"model plugin {ep.name} ({ep.value}) does not subclass "
                    "nvlm.registry.ModelPlugin (see docs/architecture.md)"
                )
            found[canonical(cls.name)] = cls
        _PLUGINS = found
    return _PLUGINS


def get(name: str) -> Any:
    """The plugin instance for a model name (`transformer_xl` == `transformer-xl`)."""
    available = plugins()
    key = canonical(name)
    if key not in available:
        known = ", ".join(sorted(available)) or "none installed"
        raise UserError(f"unknown model '{name}' (available: {known})")
    return available[key]()


def names() -> list[str]:
    return sorted(plugins())
