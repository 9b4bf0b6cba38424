"""The model plugin contract in code (nvlm.registry.ModelPlugin): every installed plugin
subclasses it, every method is documented, and a fourth model written here against the base
class alone (a tiny masked-LM encoder) pretrains and evaluates through the CLI."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from helpers import invoke

from nvlm import config as config_mod
from nvlm import registry
from nvlm.registry import ModelPlugin


def test_every_installed_plugin_subclasses_the_base_class_and_builds():
    assert set(registry.names()) >= {"bert", "electra", "transformer-xl"}
    for name in registry.names():
        plugin = registry.get(name)
        assert isinstance(plugin, ModelPlugin), name
        assert registry.canonical(plugin.name) == name and plugin.tasks
        assert not inspect.isabstract(type(plugin)), name
        fields = {f.name for f in dataclasses.fields(plugin.config_cls)}
        assert {"size", "dropout"} <= fields


def test_every_method_of_the_contract_is_documented():
    members = inspect.getmembers(ModelPlugin, inspect.isfunction)
    assert len(members) >= 15
    assert [name for name, fn in members if not inspect.getdoc(fn)] == []


def test_one_spelling_of_model_names():
    assert registry.canonical("Transformer_XL") == "transformer-xl"
    assert registry.section_key("transformer-xl") == "transformer_xl"
    assert config_mod.model_key("transformer-xl") == registry.section_key("transformer-xl")
    assert registry.get("transformer_xl").name == "transformer-xl"


def test_capabilities_are_asked_not_guessed():
    assert registry.get("transformer-xl").provides("language_model")
    assert not registry.get("bert").provides("language_model")
    with pytest.raises(ValueError):
        registry.get("bert").provides("fly")


# -- a fourth model, written against the base class only -----------------------------------------
@dataclasses.dataclass(frozen=True)
class ToyConfig(config_mod.ModelConfig):
    size: str = "tiny"
    vocab_size: int = 64
    hidden: int = 16


class ToyEncoderPlugin(ModelPlugin):
    """Embeddings + one dense layer, predicting the masked tokens of BERT shards."""

    name: ClassVar[str] = "toy-encoder"
    config_cls: ClassVar[type] = ToyConfig
    sizes: ClassVar[dict] = {"tiny": {"hidden": 16}}
    tasks: ClassVar[tuple[str, ...]] = ("pretrain", "mlm")
    shard_kind: ClassVar[str] = "bert"
    metric_units: ClassVar[dict[str, str]] = {"mlm_acc": "1"}

    def build(self, cfg, task: str):
        import keras

        ids = keras.Input((None,), dtype="int32", name="input_ids")
        positions = keras.Input((None,), dtype="int32", name="masked_lm_positions")
        # Named layers: checkpoints match variables by path, and Keras numbers unnamed ones.
        hidden = keras.layers.Embedding(cfg.model.vocab_size, cfg.model.hidden, name="embed")(ids)
        hidden = keras.layers.Dense(cfg.model.hidden, activation="gelu", name="hidden")(hidden)
        picked = keras.ops.take_along_axis(hidden, keras.ops.expand_dims(positions, -1), axis=1)
        logits = keras.layers.Dense(cfg.model.vocab_size, dtype="float32", name="logits")(picked)
        return keras.Model({"input_ids": ids, "masked_lm_positions": positions}, logits)

    def flops_per_token(self, cfg, seq_len: int, task: str = "pretrain") -> float:
        m = cfg.model
        return 6.0 * (m.hidden * m.hidden + m.hidden * m.vocab_size)

    def data_overrides(self, data: Path):
        from nvlm.data.pretraining.shards import read_shards

        info = read_shards(data, expect_kind="bert")
        return info, {"model.vocab_size": info.vocab_size, "data.seq_len": info.seq_len}

    def _losses(self, model, batch, training):
        import tensorflow as tf

        logits = model(
            {"input_ids": batch["input_ids"], "masked_lm_positions": batch["masked_lm_positions"]},
            training=training,
        )
        labels = tf.cast(batch["masked_lm_ids"], tf.int32)
        weights = tf.cast(labels > 0, tf.float32)
        xent = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        hits = tf.cast(tf.argmax(logits, -1, output_type=tf.int32) == labels, tf.float32)
        count = tf.maximum(tf.reduce_sum(weights), 1.0)
        return tf.reduce_sum(xent * weights) / count, tf.reduce_sum(hits * weights) / count

    def train_spec(self, cfg, model, data: Path, task: str, world, *, run=None, init=None):
        import tensorflow as tf

        from nvlm.data.examples import ExampleSource
        from nvlm.data.pretraining.shards import read_shards
        from nvlm.train.trainer import TrainSpec

        keys = ("input_ids", "masked_lm_positions", "masked_lm_ids")
        src = ExampleSource(read_shards(data).parts(keys), seed=cfg.train.seed)

        def batches(start: int):
            for b in src.micro_batches(start, cfg.train.batch_size, rank=world.rank,
                                       world=world.size):  # fmt: skip
                yield {k: tf.constant(v.astype(np.int32)) for k, v in b.items()}

        def loss_fn(model, batch, training):
            loss, acc = self._losses(model, batch, training)
            return loss, {"mlm_acc": acc}

        seq = cfg.data.seq_len
        return TrainSpec(model=model, loss_fn=loss_fn, batches=batches, tokens_per_example=seq,
                         flops_per_example=self.flops_per_token(cfg, seq) * seq,
                         metric_units=self.metric_units)  # fmt: skip

    def init_model_values(self, src: str) -> dict[str, Any]:
        from nvlm.train.restore import run_dir_of

        saved = config_mod.load(run_dir_of(src) / "config.yaml").model
        return {f"model.{f.name}": getattr(saved, f.name) for f in dataclasses.fields(saved)}

    def load_init(self, model, cfg, src: str, task: str) -> list[str]:
        from nvlm.train.restore import restore_model

        restore_model(model, src)
        return []

    def evaluate(self, cfg, model, data: Path, task: str, **_: Any) -> dict[str, Any]:
        import tensorflow as tf

        from nvlm.data.pretraining.shards import read_shards

        keys = ("input_ids", "masked_lm_positions", "masked_lm_ids")
        accs = []
        for part in read_shards(data).parts(keys):
            rows = part.read(0, len(part))
            batch = {k: tf.constant(v.astype(np.int32)) for k, v in rows.items()}
            accs.append(float(self._losses(model, batch, False)[1]))
        return {"task": task, "mlm_acc": float(np.mean(accs))}


@pytest.fixture
def toy_installed(monkeypatch):
    monkeypatch.setitem(registry.plugins(), "toy-encoder", ToyEncoderPlugin)
    yield
    config_mod._MODELS.pop(config_mod.model_key("toy-encoder"), None)


def test_a_fourth_model_pretrains_and_evaluates_through_the_contract_alone(toy_installed, tmp_path):
    from nvlm.bench.synthetic import pretraining_shards

    shards = pretraining_shards(tmp_path / "shards", model="bert", vocab_size=128, seq_len=32,
                                max_predictions=5, examples=64, seed=0)  # fmt: skip
    run = tmp_path / "run"
    result = invoke(*["pretrain", "--model", "toy-encoder", "--data", str(shards),
                                 "--out", str(run), "--steps", "30", "--set", "train.lr=1e-2",
                                 "--set", "train.batch_size=16", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model"] == "toy-encoder" and summary["steps"] == 30
    assert (run / "checkpoints" / "ckpt-30.index").is_file()
    result = invoke(*["eval", "--model", "toy-encoder", "--task", "mlm",
                                 "--init", str(run), "--data", str(shards), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert 0.0 <= json.loads(result.stdout)["mlm_acc"] <= 1.0


def test_docs_name_every_method_of_the_contract():
    text = (Path(__file__).parent.parent / "docs" / "architecture.md").read_text()
    members = [name for name, _ in inspect.getmembers(ModelPlugin, inspect.isfunction)]
    assert [m for m in members if not m.startswith("_") and f"`{m}(" not in text] == []


@pytest.mark.parametrize(
    "command",
    [["pretrain"], ["eval"], ["predict"], ["benchmark", "train"], ["benchmark", "infer"]],
    ids=" ".join,
)
def test_model_help_lists_the_installed_plugins(command):
    result = invoke(*command, "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert " | ".join(registry.names()) in result.stdout
