"""Hugging Face BERT directories: read (safetensors, PyTorch .bin, TF .h5) and write.

A Hugging Face directory holds `config.json` and one of `model.safetensors` (or shards listed
in `model.safetensors.index.json`), `pytorch_model.bin` or `tf_model.h5`, usually with
`vocab.txt`. Names follow the PyTorch module tree (`bert.encoder.layer.3.attention.self.query.
weight`, `[out, in]`), with or without the `bert.` prefix (a bare `BertModel` has none), with or
without the heads (`cls.predictions.*`, `cls.seq_relationship.*`, `qa_outputs.*`, and
`classifier.*` of a `BertForSequenceClassification`, whose config.json names the labels in
`id2label`).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nvlm import outputs
from nvlm.convert.bert_weights import CLASSIFY, MLM, NSP, SQUAD, export_weights, model_groups
from nvlm.convert.staging import staged_directory
from nvlm.errors import UserError
from nvlm.models.bert.config import BertConfig
from nvlm.run_dir import VOCAB

# The tokenizer files of an export, beside vocab.txt and tokenizer_config.json (run_dir.py):
# what `transformers.AutoTokenizer` loads (the fast tokenizer, then its special tokens).
HF_TOKENIZER = "tokenizer.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"

# Weights of HF heads nvlm has no model for (token classification, multiple choice): skipped
# with a note, not an error. They share the name `classifier.*` with sequence classification,
# which nvlm has: config.json's `architectures` tells them apart.
_FOREIGN_HEADS = ("classifier.",)
SEQUENCE_CLASSIFICATION = "ForSequenceClassification"  # the suffix of HF's class names
REGRESSION = "regression"  # HF's `problem_type` of a one-output head
# Buffers and tied copies that carry no information of their own.
_REDUNDANT = ("embeddings.position_ids", "cls.predictions.decoder.weight")


def read_hf_config(directory: Path) -> BertConfig:
    """`config.json` -> `BertConfig`; a UserError for another architecture."""
    path = directory / "config.json"
    raw = read_json(path)
    model_type = raw.get("model_type", "bert")  # configs converted from Google's lack it
    if model_type != "bert":
        raise UserError(
            f"{directory} is a Hugging Face {model_type!r} model, not BERT",
            hint="pass a BERT checkpoint, or the --model that matches it",
        )
    return bert_config_from_json(raw, path)


def read_json(path: Path) -> dict:
    """A JSON object file of a checkpoint (config.json, an index), or one UserError."""
    return outputs.read_json(path)


def read_hf_labels(directory: str | Path) -> tuple[str, ...]:
    """The label names of a Hugging Face classification directory (BERT or ELECTRA), output
    i's name at index i, from config.json's `id2label`; () for a regression head
    (`problem_type` "regression" or one label) or a config without labels.

    >>> read_hf_labels("tests/fixtures/bert_tiny_classify_hf")
    ('negative', 'neutral', 'positive')
    """
    path = Path(directory) / "config.json"
    raw = read_json(path)
    id2label = raw.get("id2label") or {}
    if raw.get("problem_type") == REGRESSION or raw.get("num_labels") == 1:
        return ()
    if not isinstance(id2label, dict) or len(id2label) < 2:
        return ()
    try:
        by_index = {int(k): str(v) for k, v in id2label.items()}
    except (TypeError, ValueError):
        by_index = {}
    if sorted(by_index) != list(range(len(id2label))):
        raise UserError(
            f"{path}: id2label keys must be the outputs 0..{len(id2label) - 1}, got "
            f"{sorted(map(str, id2label))}",
            hint='write id2label as {"0": name, "1": name, ...}',
        )
    labels = tuple(by_index[i] for i in range(len(by_index)))
    if len(set(labels)) != len(labels):
        raise UserError(f"{path}: id2label names a label twice: {list(labels)}")
    return labels


def classification_config(num_labels: int, labels: tuple[str, ...] = ()) -> dict:
    """The config.json entries of a `*ForSequenceClassification` head: `id2label`,
    `label2id` (unnamed outputs are LABEL_i, as Hugging Face names them) and `problem_type`."""
    names = list(labels) or [f"LABEL_{i}" for i in range(num_labels)]
    if len(names) != num_labels:
        raise ValueError(f"{len(names)} label names for a head of {num_labels} outputs")
    return {
        "num_labels": num_labels,  # informational: HF derives it from id2label
        "id2label": {str(i): name for i, name in enumerate(names)},
        "label2id": {name: i for i, name in enumerate(names)},
        "problem_type": REGRESSION if num_labels == 1 else "single_label_classification",
    }


def safetensors_shards(directory: Path) -> list[Path]:
    """The files listed by `model.safetensors.index.json` (sharded checkpoints)."""
    index = directory / "model.safetensors.index.json"
    weight_map = read_json(index).get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise UserError(f"{index} has no 'weight_map' of tensor names to shard files")
    return [directory / shard for shard in sorted(set(map(str, weight_map.values())))]


def _damaged(path: Path, exc: BaseException) -> UserError:
    # A cut-off download or copy is the usual cause; the reader's own words say which part.
    return UserError(
        f"cannot read {path}: {' '.join(str(exc).split()) or type(exc).__name__}",
        hint="the file is damaged or incomplete, e.g. a cut-off download or copy: fetch or "
        "export it again",
    )


def bert_config_from_json(raw: dict, path: Path) -> BertConfig:
    """A BERT `config.json` (HF) or `bert_config.json` (Google) -> `BertConfig`."""
    act = raw.get("hidden_act", "gelu")
    if act != "gelu":
        raise UserError(
            f"{path}: hidden_act {act!r} is not supported", hint="nvlm's BERT uses exact gelu"
        )
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise UserError(f"{path}: only absolute position embeddings are supported")
    try:
        dims = dict(
            hidden_size=int(raw["hidden_size"]),
            num_layers=int(raw["num_hidden_layers"]),
            num_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
        )
        return BertConfig(
            size=BertConfig.size_of(**dims),
            dropout=float(raw.get("hidden_dropout_prob", 0.1)),
            vocab_size=int(raw["vocab_size"]),
            max_position=int(raw.get("max_position_embeddings", 512)),
            type_vocab_size=int(raw.get("type_vocab_size", 2)),
            attention_dropout=float(raw.get("attention_probs_dropout_prob", 0.1)),
            initializer_range=float(raw.get("initializer_range", 0.02)),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
            **dims,
        )
    except KeyError as exc:
        raise UserError(f"{path} lacks the BERT setting {exc.args[0]!r}") from exc


def _read_safetensors(files: list[Path]) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import load_file
    except ImportError as exc:
        raise UserError(
            f"reading {files[0].name} needs the safetensors package", hint="pip install safetensors"
        ) from exc
    from safetensors import SafetensorError

    weights = {}
    for file in files:
        try:
            weights.update(load_file(file))
        except (SafetensorError, OSError) as exc:
            raise _damaged(file, exc) from None
    return weights


def _read_torch_bin(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError as exc:
        raise UserError(
            f"{path} is a PyTorch file and torch is not installed",
            hint="pip install torch, or save the model as model.safetensors",
        ) from exc
    import pickle

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise _damaged(path, exc) from None
    return {name: (t.float() if t.is_floating_point() else t).numpy() for name, t in state.items()}


def _read_tf_h5(path: Path) -> dict[str, np.ndarray]:
    """HF TF `tf_model.h5` (Keras 2 weights format) -> PyTorch-style names and layouts.

    Dataset paths look like `bert/tf_bert_for_pre_training/bert/encoder/layer_._0/attention/
    self/query/kernel:0`, `mlm___cls/.../predictions/bias:0`, `nsp___cls/.../seq_relationship/
    kernel:0`: the part from the first `embeddings|encoder|pooler` component (or `predictions`,
    `seq_relationship`, `qa_outputs`) is what matters. Kernels are Keras `[in, out]`, so they
    are transposed to PyTorch's `[out, in]` here and back by the common path.
    """
    import h5py

    found: dict[str, np.ndarray] = {}

    def visit(name: str, obj) -> None:
        if not isinstance(obj, h5py.Dataset):
            return
        parts = name.removesuffix(":0").split("/")
        for i, part in enumerate(parts):
            if part in ("embeddings", "encoder", "pooler", "qa_outputs"):
                parts = parts[i:]
                break
            if part in ("predictions", "seq_relationship"):
                parts = ["cls", *parts[i:]]
                break
        else:
            found[name] = np.asarray(obj)  # unknown: reported as unexpected
            return
        key = ".".join(parts).replace("layer_._", "layer.")
        value = np.asarray(obj)
        if key.endswith(".kernel"):
            # Some HF TF versions stored attention kernels as einsum [in, heads, head_dim] or
            # [heads, head_dim, out]: flatten to 2D (row-major, which is the head-major order).
            if value.ndim == 3:
                value = (
                    value.reshape(-1, value.shape[-1])
                    if key.endswith("attention.output.dense.kernel")
                    else value.reshape(value.shape[0], -1)
                )
            key, value = key[: -len("kernel")] + "weight", value.T
        elif key.endswith(".gamma"):
            key = key[: -len("gamma")] + "weight"
        elif key.endswith(".beta"):
            key = key[: -len("beta")] + "bias"
        elif key.endswith(".embeddings"):  # position/token type tables
            key = key[: -len("embeddings")] + "weight"
        elif key.endswith(".bias") and value.ndim == 2:
            value = value.reshape(-1)  # einsum bias [heads, head_dim]
        found[key] = value

    try:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    except OSError as exc:  # h5py's word for a truncated or corrupt file
        raise _damaged(path, exc) from None
    return found


def read_hf_weights(
    directory: Path,
) -> tuple[dict[str, np.ndarray], list[str], Callable[[str], str]]:
    """The weights of an HF BERT directory under canonical names, notes on skipped ones, and
    a function naming a canonical weight the way this checkpoint does (for error messages)."""
    index = directory / "model.safetensors.index.json"
    if (directory / "model.safetensors").is_file():
        raw = _read_safetensors([directory / "model.safetensors"])
    elif index.is_file():
        raw = _read_safetensors(safetensors_shards(directory))
    elif (directory / "tf_model.h5").is_file():
        raw = _read_tf_h5(directory / "tf_model.h5")
    elif (directory / "pytorch_model.bin").is_file():
        raw = _read_torch_bin(directory / "pytorch_model.bin")
    else:
        raise UserError(
            f"{directory} has config.json but no weights",
            hint="expected model.safetensors, pytorch_model.bin or tf_model.h5",
        )
    architectures = read_json(directory / "config.json").get("architectures") or []
    # A classifier is a sequence classifier unless config.json names another class.
    classifier_foreign = bool(architectures) and not any(
        str(a).endswith(SEQUENCE_CLASSIFICATION) for a in architectures
    )
    weights, notes, foreign, origins = {}, [], [], {}
    for name, value in raw.items():
        bare = name.removeprefix("bert.")
        if bare in _REDUNDANT:
            continue
        if bare == "cls.predictions.decoder.bias":  # tied to cls.predictions.bias
            weights.setdefault("cls/predictions/output_bias", value)
            continue
        if bare.startswith(_FOREIGN_HEADS) and classifier_foreign:
            foreign.append(name)
            continue
        canonical, value = _hf_to_canonical(bare, value)
        weights[canonical or name] = value
        origins[canonical or name] = name
    if foreign:
        notes.append(f"{directory}: ignored weights of a head nvlm does not have: {foreign}")
    prefix = "bert." if any(name.startswith("bert.") for name in raw) else ""
    return weights, notes, lambda name: origins.get(name) or hf_name(name, prefix)[0]


_LAYER = re.compile(r"\.layer\.(\d+)\.")


def _hf_to_canonical(name: str, value: np.ndarray) -> tuple[str | None, np.ndarray]:
    """One HF name (without `bert.`) -> (canonical name or None if unknown, value)."""
    special = {
        "cls.predictions.bias": "cls/predictions/output_bias",
        "cls.seq_relationship.weight": "cls/seq_relationship/kernel",
        "cls.seq_relationship.bias": "cls/seq_relationship/bias",
        "qa_outputs.weight": "cls/squad/kernel",
        "qa_outputs.bias": "cls/squad/bias",
        "classifier.weight": "cls/classifier/kernel",
        "classifier.bias": "cls/classifier/bias",
    }
    if name in special:
        return special[name], value.T if value.ndim == 2 else value
    if not name.startswith(("embeddings.", "encoder.", "pooler.", "cls.predictions.transform.")):
        return None, value
    parts = _LAYER.sub(r".layer_\1.", name).split(".")
    last = parts.pop()
    if parts[-1] == "LayerNorm":
        parts.append({"weight": "gamma", "gamma": "gamma", "bias": "beta", "beta": "beta"}[last])
    elif parts[0] == "embeddings" and last == "weight":
        pass  # a table: the name is the module's
    elif last == "weight":
        parts.append("kernel")
        value = value.T  # torch.nn.Linear stores [out, in]
    else:
        parts.append(last)
    return "/".join(parts), value


def hf_name(name: str, prefix: str = "bert.") -> tuple[str, bool]:
    """Canonical name -> (HF name, whether the value is transposed): the inverse of
    `_hf_to_canonical`, used to export and to name weights in errors."""
    special = {
        "cls/predictions/output_bias": ("cls.predictions.bias", False),
        "cls/seq_relationship/kernel": ("cls.seq_relationship.weight", True),
        "cls/seq_relationship/bias": ("cls.seq_relationship.bias", False),
        "cls/squad/kernel": ("qa_outputs.weight", True),
        "cls/squad/bias": ("qa_outputs.bias", False),
        "cls/classifier/kernel": ("classifier.weight", True),
        "cls/classifier/bias": ("classifier.bias", False),
    }
    if name in special:
        return special[name]
    parts = name.split("/")
    last = parts.pop()
    transposed = False
    if parts and parts[-1] == "LayerNorm":
        parts.append({"gamma": "weight", "beta": "bias"}.get(last, last))
    elif parts[0] == "embeddings":
        parts += [last, "weight"]
    elif last == "kernel":
        parts.append("weight")
        transposed = True
    else:
        parts.append(last)
    hf = re.sub(r"\.layer_(\d+)\.", r".layer.\1.", ".".join(parts))
    return (hf if hf.startswith("cls.") else prefix + hf), transposed


def write_tokenizer_files(
    directory: Path,
    vocab: Path | None,
    lowercase: bool | None,
    *,
    tokenizer_class: str,
    max_length: int,
) -> None:
    """The tokenizer of an export: vocab.txt, tokenizer.json, special_tokens_map.json and
    tokenizer_config.json, as Hugging Face writes them for BERT and ELECTRA.

    tokenizer.json is nvlm's own WordPiece tokenizer (`Vocab.tokenizer`: same normaliser,
    pre-tokenizer and model, so the same ids) plus what a fast tokenizer adds: [CLS]/[SEP]
    around one or two segments (segment ids 0 and 1), the special tokens matched whole in the
    text (`[MASK]` is one token), and a WordPiece decoder. `lowercase` None (a source that does
    not record its casing, e.g. a Google checkpoint) is uncased, nvlm's reading of such sources.
    Without a vocab only the casing is written (if known).
    """
    from tokenizers import AddedToken, decoders, processors

    from nvlm.data.special_tokens import CLS, CONTINUATION_PREFIX, MASK, PAD, SEP, UNK
    from nvlm.data.vocab import Vocab, write_tokenizer_config

    if vocab is None and lowercase is None:
        return  # nothing known about the text: no tokenizer files rather than guessed ones
    lowercase = True if lowercase is None else lowercase
    if vocab is not None:
        words = Vocab.load(vocab)
        tok = words.tokenizer(lowercase)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{CLS} $A {SEP}",
            pair=f"{CLS} $A {SEP} $B:1 {SEP}:1",
            special_tokens=[(CLS, words.cls_id), (SEP, words.sep_id)],
        )
        tok.decoder = decoders.WordPiece(prefix=CONTINUATION_PREFIX)
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in
                                (PAD, UNK, CLS, SEP, MASK)])  # fmt: skip
        shutil.copyfile(vocab, directory / VOCAB)
        outputs.write_text(directory / HF_TOKENIZER, tok.to_str(pretty=True) + "\n")
        outputs.write_json(
            directory / SPECIAL_TOKENS_MAP,
            {"unk_token": UNK, "sep_token": SEP, "pad_token": PAD, "cls_token": CLS,
             "mask_token": MASK},
        )  # fmt: skip
    write_tokenizer_config(
        directory, lowercase, tokenizer_class=tokenizer_class, model_max_length=max_length
    )


def write_hf_dir(
    model,
    cfg: BertConfig,
    dst: Path,
    vocab: Path | None,
    overwrite: bool,
    lowercase: bool | None = None,
    labels: tuple[str, ...] = (),
) -> Path:
    """Write `model` as an HF BERT directory at `dst` (atomically: temp dir, then rename), with
    the tokenizer files of `vocab` and its casing (`write_tokenizer_files`). A classifier is
    written as `BertForSequenceClassification` with `labels` as its `id2label`."""
    try:
        from safetensors.numpy import save_file
    except ImportError as exc:
        raise UserError(
            "writing model.safetensors needs the safetensors package",
            hint="pip install safetensors",
        ) from exc
    dst = Path(dst)
    if dst.exists() and not overwrite:
        raise UserError(f"{dst} already exists", hint="choose a new directory or remove it")

    groups = model_groups(model)
    if MLM in groups or NSP in groups:
        architecture, prefix = "BertForPreTraining", "bert."
    elif SQUAD in groups:
        architecture, prefix = "BertForQuestionAnswering", "bert."
    elif CLASSIFY in groups:
        architecture, prefix = "BertForSequenceClassification", "bert."
    else:
        architecture, prefix = "BertModel", ""
    tensors = {}
    for name, value in export_weights(model).items():
        hf, transposed = hf_name(name, prefix)
        tensors[hf] = np.ascontiguousarray(value.T if transposed else value)
    config = {
        "architectures": [architecture],
        "model_type": "bert",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "intermediate_size": cfg.intermediate_size,
        "hidden_act": "gelu",
        "hidden_dropout_prob": cfg.dropout,
        "attention_probs_dropout_prob": cfg.attention_dropout,
        "max_position_embeddings": cfg.max_position,
        "type_vocab_size": cfg.type_vocab_size,
        "initializer_range": cfg.initializer_range,
        "layer_norm_eps": cfg.layer_norm_eps,
        "position_embedding_type": "absolute",
        "pad_token_id": 0,
        "tie_word_embeddings": True,
        "dtype": "float32",
    }
    if CLASSIFY in groups:
        config.update(classification_config(model.num_labels, tuple(labels)))

    with staged_directory(dst) as tmp:
        save_file(tensors, tmp / "model.safetensors", metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        write_tokenizer_files(
            tmp, vocab, lowercase, tokenizer_class="BertTokenizer", max_length=cfg.max_position
        )
    return dst
