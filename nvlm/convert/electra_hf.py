"""Hugging Face ELECTRA directories: read a discriminator, a generator or a pair of them, and
write them.

A directory holds `config.json` (`model_type: "electra"`) and `model.safetensors` (or the
shards of `model.safetensors.index.json`, or `pytorch_model.bin`), usually `vocab.txt`.
What it holds is told by its weights: `discriminator_predictions.*` (ElectraForPreTraining,
a discriminator), `generator_predictions.*` / `generator_lm_head.*` (ElectraForMaskedLM, a
generator), `qa_outputs.*` (ElectraForQuestionAnswering) or `classifier.*`
(ElectraForSequenceClassification, labels in config.json's `id2label`): fine-tuned
discriminators; none of them (ElectraModel: an encoder, used as a discriminator). A PAIR is a directory with
`discriminator/` and `generator/` subdirectories, as `nvlm pretrain --model electra` writes
into RUN/hf: it is what pretraining and masked-LM evaluation need.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nvlm.convert.electra_weights import (
    CLASSIFY,
    DISCRIMINATOR,
    EMBEDDINGS,
    GENERATOR,
    MLM_HEAD,
    QA_JOINT,
    QA_SIMPLE,
    RTD_HEAD,
    export_weights,
    group_of,
)
from nvlm.convert.staging import staged_directory
from nvlm.errors import UserError
from nvlm.run_dir import TOKENIZER_CONFIG, VOCAB

DISCRIMINATOR_ROLE, GENERATOR_ROLE = "discriminator", "generator"
# Buffers and tied copies that carry no information of their own.
_REDUNDANT = ("embeddings.position_ids", "embeddings.token_type_ids")
_TIED = "generator_lm_head.weight"


@dataclass(frozen=True)
class HfElectra:
    """One HF ELECTRA directory read into memory.

    Args:
        path: the directory.
        role: "discriminator" or "generator" (from its weights, see the module docstring).
        dims: its encoder's architecture (`vocab_size`, `hidden_size`, ... as ElectraConfig
            names) and `dropout`, `attention_dropout`, `initializer_range`.
        weights: canonical name -> array (nvlm.convert.electra_weights).
        vocab: its vocab.txt, if any; lowercase: its tokenizer_config.json `do_lower_case`.
        notes: what was skipped while reading.
        display: canonical name -> this directory's name for it (error messages).
    """

    path: Path
    role: str
    dims: dict
    weights: dict[str, np.ndarray]
    vocab: Path | None = None
    lowercase: bool = True
    notes: list[str] = field(default_factory=list)
    display: Callable[[str], str] = str


def is_pair(path: str | Path) -> bool:
    path = Path(path)
    return all((path / part / "config.json").is_file() for part in ("discriminator", "generator"))


def read_hf_dims(directory: Path) -> tuple[dict, list[str]]:
    """config.json -> (architecture dims, the `architectures` list); UserError otherwise."""
    from nvlm.convert.hf import read_json

    path = directory / "config.json"
    raw = read_json(path)
    model_type = raw.get("model_type")
    if model_type != "electra":
        raise UserError(
            f"{directory} is a Hugging Face {model_type!r} model, not ELECTRA",
            hint="pass an ELECTRA checkpoint, or the --model that matches it",
        )
    if raw.get("hidden_act", "gelu") != "gelu":
        raise UserError(f"{path}: hidden_act {raw['hidden_act']!r} is not supported (exact gelu)")
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise UserError(f"{path}: only absolute position embeddings are supported")
    try:
        dims = dict(
            vocab_size=int(raw["vocab_size"]),
            hidden_size=int(raw["hidden_size"]),
            num_layers=int(raw["num_hidden_layers"]),
            num_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
            embedding_size=int(raw.get("embedding_size") or raw["hidden_size"]),
            max_position=int(raw.get("max_position_embeddings", 512)),
            type_vocab_size=int(raw.get("type_vocab_size", 2)),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
            dropout=float(raw.get("hidden_dropout_prob", 0.1)),
            attention_dropout=float(raw.get("attention_probs_dropout_prob", 0.1)),
            initializer_range=float(raw.get("initializer_range", 0.02)),
        )
    except KeyError as exc:
        raise UserError(f"{path} lacks the ELECTRA setting {exc.args[0]!r}") from exc
    return dims, list(raw.get("architectures") or [])


def _raw_weights(directory: Path) -> dict[str, np.ndarray]:
    from nvlm.convert.hf import _read_safetensors, _read_torch_bin, safetensors_shards

    index = directory / "model.safetensors.index.json"
    if (directory / "model.safetensors").is_file():
        return _read_safetensors([directory / "model.safetensors"])
    if index.is_file():
        return _read_safetensors(safetensors_shards(directory))
    if (directory / "pytorch_model.bin").is_file():
        return _read_torch_bin(directory / "pytorch_model.bin")
    raise UserError(
        f"{directory} has config.json but no ELECTRA weights",
        hint="expected model.safetensors or pytorch_model.bin (save TF models as safetensors)",
    )


def to_canonical(name: str, role: str) -> str:
    """An HF name of a `role` directory -> the canonical name."""
    bare = name.removeprefix("electra.")
    if bare.endswith(".gamma") or bare.endswith(".beta"):  # old LayerNorm names
        bare = bare[: bare.rindex(".")] + (".weight" if bare.endswith(".gamma") else ".bias")
    if bare.startswith(("embeddings_project.", "encoder.")):
        return f"{role}:{bare}"
    return bare


def to_hf(name: str, prefix: str) -> str:
    """A canonical name -> the HF name in a directory whose encoder is under `prefix`."""
    if ":" in name:
        return prefix + name.split(":", 1)[1]
    if name.startswith("embeddings."):
        return prefix + name
    return name


def read_hf_electra(directory: str | Path) -> HfElectra:
    """Read one HF ELECTRA directory (config, weights under canonical names, vocab)."""
    directory = Path(directory)
    dims, architectures = read_hf_dims(directory)
    raw = _raw_weights(directory)
    names = set(raw)
    if any(n.startswith(("generator_predictions.", "generator_lm_head.")) for n in names):
        role = GENERATOR_ROLE
    elif any(
        n.startswith(("discriminator_predictions.", "qa_outputs.", "qa_joint.", "classifier."))
        for n in names
    ):
        role = DISCRIMINATOR_ROLE
    elif any(a in ("ElectraForMaskedLM", "ElectraForCausalLM") for a in architectures):
        role = GENERATOR_ROLE
    else:
        role = DISCRIMINATOR_ROLE
    prefix = "electra." if any(n.startswith("electra.") for n in names) else ""
    weights, origins, notes = {}, {}, []
    for name, value in raw.items():
        bare = name.removeprefix("electra.")
        if bare in _REDUNDANT:
            continue
        if name == _TIED:
            table = raw.get(f"{prefix}embeddings.word_embeddings.weight")
            if table is not None and not np.array_equal(table, value):
                notes.append(f"{directory}: generator_lm_head.weight differs from the word "
                             "embeddings; nvlm ties them and uses the embeddings")  # fmt: skip
            continue
        canonical = to_canonical(name, role)
        weights[canonical] = np.asarray(value)
        origins[canonical] = name
    vocab = directory / VOCAB
    lowercase = True
    tok = directory / TOKENIZER_CONFIG
    if tok.is_file():
        try:
            lowercase = bool(json.loads(tok.read_bytes()).get("do_lower_case", True))
        except (ValueError, AttributeError):  # not JSON, not UTF-8, not an object: the default
            pass
    return HfElectra(
        directory, role, dims, weights, vocab if vocab.is_file() else None, lowercase, notes,
        lambda n: origins.get(n) or to_hf(n, prefix),
    )  # fmt: skip


def check_role(ckpt: HfElectra, expected: str, where: str) -> None:
    """A UserError when a generator is given where a discriminator is needed, or vice versa."""
    if ckpt.role == expected:
        return
    kinds = {
        GENERATOR_ROLE: "an ELECTRA generator (ElectraForMaskedLM)",
        DISCRIMINATOR_ROLE: "an ELECTRA discriminator (ElectraForPreTraining or an encoder)",
    }
    hint = f"pass the {expected}, e.g. RUN/hf/{expected} of an nvlm pretraining run"
    if ckpt.role == GENERATOR_ROLE:  # nvlm reads a generator with its pair, never alone
        hint += (
            "; a generator is read from the directory that holds it with its discriminator "
            "(discriminator/ + generator/, as RUN/hf): predict --task fill-mask, or --task "
            "features --part generator"
        )
    raise UserError(
        f"{ckpt.path} is {kinds[ckpt.role]}, but {where} needs the {expected}", hint=hint
    )


def read_pair(directory: str | Path) -> tuple[HfElectra, HfElectra, list[str]]:
    """RUN/hf-style `discriminator/` + `generator/`: both read and checked against each other."""
    directory = Path(directory)
    disc = read_hf_electra(directory / "discriminator")
    gen = read_hf_electra(directory / "generator")
    check_role(disc, DISCRIMINATOR_ROLE, f"the discriminator/ of the pair {directory}")
    check_role(gen, GENERATOR_ROLE, f"the generator/ of the pair {directory}")
    for key in ("vocab_size", "embedding_size", "max_position", "type_vocab_size"):
        if disc.dims[key] != gen.dims[key]:
            raise UserError(
                f"{directory}: the generator's {key} ({gen.dims[key]}) differs from the "
                f"discriminator's ({disc.dims[key]}); ELECTRA shares the embeddings, so they "
                "must be equal",
                hint="pass a generator and discriminator pretrained together",
            )
    notes = []
    shared = [n for n in gen.weights if group_of(n) == EMBEDDINGS]
    if any(not np.array_equal(gen.weights[n], disc.weights.get(n)) for n in shared):
        notes.append(
            f"{directory}: the generator's embeddings differ from the discriminator's; "
            "the discriminator's are used (they are shared)"
        )
    return disc, gen, notes


# --- writing -----------------------------------------------------------------------------------


def hf_config(dims: dict, architecture: str) -> dict:
    return {
        "architectures": [architecture],
        "model_type": "electra",
        "vocab_size": dims["vocab_size"],
        "embedding_size": dims["embedding_size"],
        "hidden_size": dims["hidden_size"],
        "num_hidden_layers": dims["num_layers"],
        "num_attention_heads": dims["num_heads"],
        "intermediate_size": dims["intermediate_size"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": dims["dropout"],
        "attention_probs_dropout_prob": dims["attention_dropout"],
        "max_position_embeddings": dims["max_position"],
        "type_vocab_size": dims["type_vocab_size"],
        "initializer_range": dims["initializer_range"],
        "layer_norm_eps": dims["layer_norm_eps"],
        "position_embedding_type": "absolute",
        "pad_token_id": 0,
        "tie_word_embeddings": True,
        "dtype": "float32",
    }


def config_dims(cfg, part: str) -> dict:
    """The HF config dims of a model config's discriminator or generator."""
    dims = {k: getattr(cfg, k) for k in (
        "vocab_size", "embedding_size", "max_position", "type_vocab_size", "layer_norm_eps",
        "dropout", "attention_dropout", "initializer_range",
        "hidden_size", "num_layers", "num_heads", "intermediate_size",
    )}  # fmt: skip
    if part == GENERATOR_ROLE:
        dims.update(cfg.generator_dims())
    return dims


def export_part(model, cfg, part: str) -> tuple[dict[str, np.ndarray], dict, list[str]]:
    """(HF tensors, config.json, warnings) of one part of a built ELECTRA model."""
    warnings = []
    if hasattr(model, "generator"):  # ElectraPretrainer
        if part == GENERATOR_ROLE:
            groups, arch, role = {EMBEDDINGS, GENERATOR, MLM_HEAD}, "ElectraForMaskedLM", part
        else:
            groups, arch, role = (
                {EMBEDDINGS, DISCRIMINATOR, RTD_HEAD},
                "ElectraForPreTraining",
                part,
            )
    else:
        if part == GENERATOR_ROLE:
            raise UserError(
                "this run has no generator (only pretraining runs do): drop --part generator"
            )
        role = DISCRIMINATOR_ROLE
        groups = {EMBEDDINGS, DISCRIMINATOR, QA_SIMPLE, QA_JOINT, CLASSIFY}
        if hasattr(model, "span_head"):
            arch = "ElectraForQuestionAnswering"
        elif hasattr(model, "classifier_out"):
            arch = "ElectraForSequenceClassification"
        else:
            arch = "ElectraModel"
            if hasattr(model, "qa_head"):
                warnings.append(
                    "the joint SQuAD head has no Hugging Face class: written as ElectraModel "
                    "plus nvlm's qa_joint.* tensors (Hugging Face loads the encoder and "
                    "ignores them; nvlm --init reads them back)"
                )
    prefix = "" if arch == "ElectraModel" else "electra."
    # `groups` holds one encoder only, so stripping its part from the names is unambiguous.
    tensors = {to_hf(name, prefix): value for name, value in export_weights(model, groups).items()}
    config = hf_config(config_dims(cfg, role), arch)
    if arch == "ElectraForSequenceClassification":
        from nvlm.convert.hf import classification_config

        config.update(classification_config(model.num_labels, tuple(cfg.labels)))
    return tensors, config, warnings


def write_hf_dir(
    tensors: dict[str, np.ndarray],
    config: dict,
    dst: str | Path,
    *,
    vocab: Path | None = None,
    lowercase: bool | None = None,
    overwrite: bool = False,
) -> Path:
    """config.json + model.safetensors + the tokenizer files (`write_tokenizer_files`) written
    into a temporary directory next to `dst`, then renamed: `dst` is complete or absent."""
    from nvlm.convert.hf import write_tokenizer_files

    try:
        from safetensors.numpy import save_file
    except ImportError as exc:
        raise UserError("writing model.safetensors needs the safetensors package") from exc
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise UserError(f"{dst} already exists", hint="choose a new directory or add --overwrite")
    with staged_directory(dst) as tmp:
        contiguous = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
        save_file(contiguous, tmp / "model.safetensors", metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        write_tokenizer_files(
            tmp,
            vocab,
            lowercase,
            tokenizer_class="ElectraTokenizer",
            max_length=config["max_position_embeddings"],
        )
    return dst
