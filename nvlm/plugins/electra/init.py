"""`--init SRC` for ELECTRA: an nvlm ELECTRA run or checkpoint, a Hugging Face ELECTRA
directory (discriminator, or fine-tuned for SQuAD or classification), or a pair directory (`discriminator/` +
`generator/`, as RUN/hf). The architecture (and vocab) come from the source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nvlm.errors import UserError
from nvlm.models.electra.config import ARCHITECTURE, ElectraConfig
from nvlm.run_dir import TOKENIZER_CONFIG, VOCAB

NVLM, HF, PAIR = "nvlm", "hf", "pair"
# What each task needs of a source.
_PRETRAINING_TASKS = ("pretrain", "mlm")


def source_kind(src: str | Path) -> str:
    from nvlm.convert.electra_hf import is_pair

    path = Path(src)
    if path.is_dir() and is_pair(path):
        return PAIR
    from nvlm.convert import detect_source

    kind = detect_source(path)  # UserError for a path that is none of the known kinds
    if kind == "google":
        raise UserError(
            f"{src} is a Google TF1 checkpoint: nvlm reads ELECTRA from Hugging Face "
            "directories and nvlm runs",
            hint="convert it with Hugging Face's convert_electra_original_tf_checkpoint_to_pytorch",
        )
    return kind


def _run_config(src: str | Path):
    from nvlm import config as config_mod
    from nvlm.train.restore import run_dir_of

    cfg = config_mod.load(run_dir_of(src))
    if config_mod.model_key(cfg.model_name) != "electra":
        raise UserError(f"--init {src} is a {cfg.model_name} run, not an ELECTRA one")
    return cfg


def special_ids(vocab: Path | None) -> dict[str, int]:
    if vocab is None:
        return {}
    from nvlm.data.special_tokens import CLS, MASK, SEP
    from nvlm.data.vocab import Vocab

    v = Vocab.load(vocab)
    return {
        "model.mask_token_id": v.id(MASK),
        "model.cls_token_id": v.id(CLS),
        "model.sep_token_id": v.id(SEP),
    }


def generator_fractions(disc: dict, gen: dict, where: str) -> dict[str, float]:
    """The config fractions that rebuild generator `gen` from discriminator `disc`."""
    hidden = gen["hidden_size"] / disc["hidden_size"]
    layers = gen["num_layers"] / disc["num_layers"]
    probe = ElectraConfig(
        size="custom", **{k: disc[k] for k in ARCHITECTURE}, generator_hidden_fraction=hidden,
        generator_layers_fraction=layers,
    )  # fmt: skip
    derived = probe.generator_dims()
    wrong = [f"{k} {gen[k]} (expected {derived[k]})" for k in derived if derived[k] != gen[k]]
    if wrong or hidden > 1 or layers > 1:
        raise UserError(
            f"{where}: the generator ({', '.join(wrong) or 'larger than the discriminator'}) is "
            "not the discriminator scaled by one fraction, which is how nvlm builds it",
            hint="hidden size, heads and feed-forward size scale together (ELECTRA's recipe)",
        )
    return {"model.generator_hidden_fraction": hidden, "model.generator_layers_fraction": layers}


def init_model_values(src: str | Path) -> dict[str, Any]:
    """What `--init SRC` fixes in the config, as dotted keys: the architecture (with the
    generator for pretraining sources, the SQuAD or classification head for fine-tuned ones:
    `model.num_labels` and `model.labels`, HF's id2label) and the special ids."""
    kind = source_kind(src)
    if kind == NVLM:
        cfg = _run_config(src)
        keys = [*ARCHITECTURE, "size", "mask_token_id", "cls_token_id", "sep_token_id"]
        if cfg.stage.startswith("pretrain"):
            keys += ["generator_hidden_fraction", "generator_layers_fraction"]
        elif cfg.stage == "squad":
            keys += ["qa_head", "qa_hidden_size"]
        elif cfg.stage == "classify":
            keys += ["num_labels", "labels"]
        return {f"model.{k}": getattr(cfg.model, k) for k in keys}

    from nvlm.convert.electra_hf import (
        DISCRIMINATOR_ROLE,
        check_role,
        read_hf_electra,
        read_pair,
    )

    if kind == PAIR:
        disc, gen, _ = read_pair(src)
        values = generator_fractions(disc.dims, gen.dims, str(src))
    else:
        disc = read_hf_electra(src)
        check_role(disc, DISCRIMINATOR_ROLE, "--init")
        values = {}
        if "qa_outputs.weight" in disc.weights:
            values["model.qa_head"] = "simple"
        elif "qa_joint.end.weight" in disc.weights:
            values["model.qa_head"] = "joint"
            values["model.qa_hidden_size"] = int(disc.weights["qa_joint.end.weight"].shape[1])
        elif "classifier.out_proj.bias" in disc.weights:
            from nvlm.convert.hf import read_hf_labels

            values["model.num_labels"] = int(disc.weights["classifier.out_proj.bias"].shape[0])
            values["model.labels"] = read_hf_labels(src)
    values.update({f"model.{k}": disc.dims[k] for k in ARCHITECTURE})
    values["model.size"] = ElectraConfig.size_of(**disc.dims)
    values.update(special_ids(disc.vocab))
    return values


def source_text_settings(src: str | Path) -> tuple[Path | None, bool]:
    """(vocab.txt, lowercase) of a source."""
    import json

    from nvlm.train.restore import run_dir_of

    kind = source_kind(src)
    if kind == NVLM:
        base = run_dir_of(src)
    elif kind == PAIR:
        base = Path(src) / "discriminator"
    else:
        base = Path(src)
    vocab = base / VOCAB
    lowercase = True
    tok = base / TOKENIZER_CONFIG
    if tok.is_file():
        lowercase = bool(json.loads(tok.read_text()).get("do_lower_case", True))
    return (vocab if vocab.is_file() else None), lowercase


def source_weights(src: str | Path, task: str) -> tuple[dict, str, Any, list[str]]:
    """(canonical weights, source name, display function, notes) of `src`, checked to hold
    what `task` needs: a discriminator for squad/features, both parts for pretraining and
    masked-LM evaluation (an HF discriminator alone may start pretraining: its generator
    starts from scratch)."""
    kind = source_kind(src)
    if kind == NVLM:
        from nvlm.convert.electra_weights import export_weights
        from nvlm.models.electra.build import build
        from nvlm.train.restore import restore_model

        src_cfg = _run_config(src)
        src_task = "pretrain" if src_cfg.stage.startswith("pretrain") else src_cfg.stage
        model = build(src_cfg, src_task)
        prefix = restore_model(model, src)
        return export_weights(model), prefix, str, []

    from nvlm.convert.electra_hf import DISCRIMINATOR_ROLE, check_role, read_hf_electra, read_pair

    if kind == PAIR:
        disc, gen, notes = read_pair(src)
        weights = dict(disc.weights)
        weights.update({n: v for n, v in gen.weights.items() if not n.startswith("embeddings.")})

        def display(name: str) -> str:
            part = gen if name in gen.weights and not name.startswith("embeddings.") else disc
            return f"{part.path.name}/{part.display(name)}"

        return weights, str(src), display, [*disc.notes, *gen.notes, *notes]
    ckpt = read_hf_electra(src)
    if task == "mlm":
        raise UserError(
            f"{src} is one Hugging Face model; masked-LM evaluation needs the generator AND "
            "the discriminator",
            hint="pass a directory with discriminator/ and generator/ (RUN/hf) or an nvlm run",
        )
    check_role(ckpt, DISCRIMINATOR_ROLE, f"--init for {task}")
    return ckpt.weights, str(src), ckpt.display, ckpt.notes


def encoder_weights(src: str | Path, task: str) -> tuple[dict, str, Any, list[str]]:
    """`source_weights` of task "features" (the encoder `src` holds: a run's or a pair's
    discriminator, a lone directory's own) or "features:PART", as the weights of a lone
    encoder (named as the discriminator, which `features` builds). A source without that
    part is refused in one line."""
    from nvlm.convert.electra_hf import read_hf_electra
    from nvlm.convert.electra_weights import DISCRIMINATOR, EMBEDDINGS, GENERATOR, group_of

    part = task.partition(":")[2]
    if source_kind(src) == HF:
        ckpt = read_hf_electra(src)
        weights, name, display, notes = ckpt.weights, str(src), ckpt.display, ckpt.notes
        holds = [ckpt.role]
    else:  # a run or a pair: the discriminator, and the generator when it was pretrained
        weights, name, display, notes = source_weights(src, "features")
        holds = [DISCRIMINATOR] + [GENERATOR] * any(group_of(n) == GENERATOR for n in weights)
    part = part or holds[0]
    if part not in holds:
        raise UserError(
            f"--part {part}: --init {src} holds no ELECTRA {part}, only the {holds[0]} (drop "
            "--part, or pass a pretraining run or a discriminator/ + generator/ pair)"
        )
    if part == DISCRIMINATOR:  # already under its names (the other parts: warned, ignored)
        return weights, name, display, notes
    mine = f"{part}:"
    lone = {
        n.replace(mine, f"{DISCRIMINATOR}:", 1): v
        for n, v in weights.items()
        if n.startswith(mine) or group_of(n) == EMBEDDINGS
    }

    def shown(n: str) -> str:
        return display(n.replace(f"{DISCRIMINATOR}:", mine, 1))

    return lone, name, shown, notes


def load_into(model, cfg, src: str | Path, task: str) -> list[str]:
    """Load `src` into the built `model`; return warnings (heads legitimately absent)."""
    from nvlm.convert.electra_weights import assign_weights

    if task.startswith("features"):
        weights, name, display, notes = encoder_weights(src, task)
    else:
        weights, name, display, notes = source_weights(src, task)
    return [*notes, *assign_weights(model, weights, name, display)]
