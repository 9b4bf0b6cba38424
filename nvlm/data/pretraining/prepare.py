"""`nvlm data pretraining`: corpus -> HDF5 shards + manifest, parallel, resumable, deterministic.

Order of work, so that a mistake costs nothing and an interruption costs little:
  1. validate parameters (--out is not an input, is writable), load the vocab, read every
     input once (sha256, UTF-8, documents);
  2. lock DIR (one run at a time) and compare with what it already holds (manifest, or the
     state of an unfinished run): other parameters -> refuse; same -> keep every shard whose
     sha256 matches its record, remove anything else nvlm left there;
  3. build the missing shards in worker processes, which die with this one (a killed run
     leaves no orphan writing into DIR); each shard is written under a hidden temporary name
     and renamed when complete, then its record is saved at once (resume point);
  4. write manifest.json last, then drop the state directory.
With --holdout-documents, the held-out documents (`HoldoutSplit`) become DIR/heldout/, a shard
set of its own made the same way (steps 2-4) before the training shards, whose manifest is then
written last of all.
On any error the temporary files and token spills are removed; completed, recorded shards stay
(they are valid, and a re-run keeps them). A full disk is one line (`nvlm.outputs.disk_full`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing as mp
import os
import queue
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from nvlm import __version__
from nvlm.data.checksum import sha256_file
from nvlm.data.inputs import scan_inputs
from nvlm.data.manifest import FORMAT_VERSION, identity_difference, write_manifest
from nvlm.data.pretraining.config import AUTO_SHARD_BYTES, PretrainingConfig
from nvlm.data.pretraining.holdout_split import HELDOUT_DIR, HoldoutSplit
from nvlm.data.pretraining.shard_format import (
    KIND_PRETRAINING,
    MANIFEST,
    PARTIAL_DIR,
    VOCAB_COPY,
    schema,
)
from nvlm.data.pretraining.worker import WorkerJob, record_path, run_worker, worker_main
from nvlm.data.progress import PipelineProgress
from nvlm.data.special_tokens import SPECIAL_TOKENS
from nvlm.data.vocab import Vocab
from nvlm.errors import RunFailed, UserError
from nvlm.outputs import check_writable_dir, exclusive_lock, refuse_inputs, write_bytes, write_json
from nvlm.report import warn

_PARAMS = "params.json"


# One writer per --out: two runs would delete and rebuild each other's shards.
_BUSY = (
    "--out {out} is being written by another `nvlm data pretraining` right now "
    "(wait for it to end, or choose another --out)"
)


def prepare_pretraining(
    cfg: PretrainingConfig,
    inputs: list[Path],
    vocab_path: Path,
    out: Path,
    *,
    workers: int = 1,
    overwrite: bool = False,
    progress: Callable[[int, int], PipelineProgress] | None = None,
) -> dict:
    """Write the shards and manifest for `cfg` into `out`; return the run summary.

    `progress(documents, shards)`, if given, makes the progress display (a context manager
    with on_tokens / on_instances / on_shard, like `PipelineProgress`) once the amount of work
    is known. With workers > 1 the work runs in spawned processes: a script calling this must
    guard its entry point with `if __name__ == "__main__":` (the usual multiprocessing rule).
    """
    started = time.perf_counter()
    out = Path(out)
    if workers < 1:
        raise UserError(f"--workers must be at least 1, not {workers}")
    # Shards written into an input directory would be read as text by the next run, and the
    # vocab copy would replace a vocab kept there.
    refuse_inputs(out, {"--input": list(inputs), "--vocab": vocab_path})
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory")
    check_writable_dir(out)
    vocab = _load_vocab(vocab_path, cfg)
    files = scan_inputs(inputs, cfg.errors)
    documents = sum(f.documents for f in files)
    split = None
    if cfg.holdout_documents is not None:
        split = HoldoutSplit.plan(
            cfg.holdout_documents, seed=cfg.seed, documents=documents, need=_need(cfg)
        )
    cfg = _settle_shards(cfg, files, split.training_documents if split else documents)
    identity = {
        "parameters": cfg.to_json(),
        "inputs": [f.to_json() for f in files],
        "vocab": {
            "path": str(Path(vocab_path).resolve()),
            "sha256": vocab.sha256,
            "size": len(vocab),
            "special_ids": vocab.special_ids,
        },
    }
    if split is not None:
        identity["split"] = split.identity()
    created_dir = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive_lock(out, lambda: _BUSY.format(out=out)):
            records = _claim_directory(out, identity, cfg.shards, overwrite)
            heldout = None
            if split is not None:
                # Held-out set first, training manifest last: DIR reads as finished only once
                # both sides are (a rerun finishes whichever is not).
                heldout = _prepare_heldout(cfg, identity, split, inputs, vocab, vocab_path,
                                           out / HELDOUT_DIR, workers, progress)  # fmt: skip
            summary = _build(cfg, identity, records, inputs, vocab, vocab_path, out, workers,
                             progress, split)  # fmt: skip
    except BaseException:
        if created_dir and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    if heldout is not None:
        summary["tokens_built"] += heldout.pop("tokens_built")
        summary["heldout"] = heldout
    seconds = time.perf_counter() - started
    tokens_built = summary.pop("tokens_built")
    return {
        **summary,
        "seconds": round(seconds, 3),
        "tokens_per_second": round(tokens_built / seconds) if summary["workers"] else 0,
    }


def _load_vocab(vocab_path: Path, cfg: PretrainingConfig) -> Vocab:
    vocab = Vocab.load(vocab_path)
    if len(vocab.replacement_ids()) == 0:
        raise UserError(
            f"vocab {vocab_path} holds only the special tokens {' '.join(SPECIAL_TOKENS)}: "
            "every word would become [UNK]",
            hint="train one on your text with `nvlm data vocab --input ... --out vocab.txt`",
        )
    cased_vocab = any(t != t.lower() for t in vocab.tokens if not t.startswith("["))
    if cased_vocab == cfg.lowercase:
        # Not an error (a cased vocab can be used lowercased), but usually a forgotten flag.
        warn(
            f"{vocab_path} {'has' if cased_vocab else 'has no'} upper-case tokens but the text is "
            f"{'lowercased' if cfg.lowercase else 'kept cased'}; "
            f"{'--cased' if cfg.lowercase else '--lowercase'} may be what you meant"
        )
    return vocab


def _need(cfg: PretrainingConfig) -> int:
    """Documents a shard needs at least: BERT's random next segment comes from another one."""
    return 2 if cfg.model == "bert" else 1


def _settle_shards(cfg: PretrainingConfig, files: list, documents: int) -> PretrainingConfig:
    """Resolve --shards 0 (one per 64 MiB of input) and check the `documents` used for
    training (all of them, or those a held-out split leaves) can fill them."""
    need = _need(cfg)
    if documents < need:
        raise UserError(
            f"the input has {documents} document; BERT pretraining needs at least 2 (the random "
            "second segment of a pair comes from another document)",
            hint="separate documents with a blank line, or add more text",
        )
    if cfg.shards == 0:
        auto = -(-sum(f.size for f in files) // AUTO_SHARD_BYTES)
        cfg = dataclasses.replace(cfg, shards=max(1, min(auto, documents // need)))
    if documents < need * cfg.shards:
        raise UserError(
            f"{'the input has' if cfg.holdout_documents is None else 'training keeps'} "
            f"{documents} document(s), too few for {cfg.shards} shard(s)"
            + (
                " (BERT needs 2 per shard: random next segments come from another document)"
                if need == 2
                else ""
            ),
            hint=f"use --shards {max(1, documents // need)} or fewer",
        )
    return cfg


def _prepare_heldout(cfg, identity, split, inputs, vocab, vocab_path, out, workers, progress):
    """Make DIR/heldout: the held-out documents as a shard set of its own (same parameters,
    its share of the shards), resumable and atomic as the training set is."""
    cfg = dataclasses.replace(cfg, shards=split.shards(cfg.shards, _need(cfg)))
    identity = {**identity, "parameters": cfg.to_json()}
    out.mkdir(exist_ok=True)
    try:
        # --overwrite already emptied it (with the rest of DIR) in the training set's claim.
        records = _claim_directory(out, identity, cfg.shards, overwrite=False)
        summary = _build(cfg, identity, records, inputs, vocab, vocab_path, out, workers,
                         progress, split, role="heldout")  # fmt: skip
    except BaseException:
        if not any(out.iterdir()):
            out.rmdir()
        raise
    return {k: summary[k] for k in ("out", "documents", "sentences", "tokens", "instances",
                                    "masked_tokens", "shards", "shards_built", "tokens_built")}  # fmt: skip


def _build(cfg, identity, records, inputs, vocab, vocab_path, out, workers, progress,
           split=None, role="training") -> dict:  # fmt: skip
    """Build the shards `records` lacks, then the vocab copy and the manifest. With a held-out
    `split`, only the documents of `role` ("training" or "heldout") are used."""
    partial = out / PARTIAL_DIR
    partial.mkdir(exist_ok=True)
    write_json(partial / _PARAMS, identity)
    for index, record in records.items():
        write_json(record_path(partial, index), record)
    missing = [s for s in range(cfg.shards) if s not in records]
    if missing:
        # The state directory now holds everything a resume needs; a manifest listing shards
        # that are about to be rebuilt would only mislead a reader until the run ends.
        (out / MANIFEST).unlink(missing_ok=True)
    workers = max(1, min(workers, len(missing)))
    tokens_built = 0
    try:
        if missing:
            owned = [tuple(missing[w::workers]) for w in range(workers)]
            threads = max(1, (os.cpu_count() or 1) // workers)
            side = {"role": role, "heldout": frozenset(split.heldout)} if split else {}
            jobs = [
                WorkerJob(cfg, tuple(str(p) for p in inputs), str(vocab_path), str(out),
                          str(partial), own, threads, os.getpid(), **side)
                for own in owned
            ]  # fmt: skip

            def on_record(record: dict) -> None:
                records[int(record["name"].split("-")[1].split(".")[0])] = record

            documents = (
                split.count(role) if split else sum(i["documents"] for i in identity["inputs"])
            )
            todo = sum(len(range(s, documents, cfg.shards)) for s in missing)
            display = progress(todo, len(missing)) if progress else contextlib.nullcontext()
            with display as sink:
                built = _run_jobs(jobs, on_record, sink)
            tokens_built = sum(r["tokens"] for r in built)
    except BaseException:
        _clean_up(out, partial)
        raise
    # A copy of the vocab makes the directory self-contained (training and `nvlm predict` find
    # the ids' meaning next to the shards).
    write_bytes(out / VOCAB_COPY, Path(vocab_path).read_bytes())
    manifest = _manifest(cfg, identity, records, vocab, role)
    write_manifest(out, manifest)
    shutil.rmtree(partial, ignore_errors=True)
    return {
        "out": str(out),
        "model": cfg.model,
        **manifest["counts"],
        "shards": cfg.shards,
        "shards_built": len(missing),
        "shards_kept": cfg.shards - len(missing),
        "workers": workers if missing else 0,
        "tokens_built": tokens_built,
    }


def _claim_directory(out: Path, identity: dict, shards: int, overwrite: bool) -> dict[int, dict]:
    """Decide what `out` already holds; return the records of shards that can be kept.

    Only a shard whose sha256 matches a record (the manifest's, or one a worker wrote after
    the shard was complete) is kept; everything else nvlm left there (shards finished by a
    killed run but never recorded, temporary files, token spills) is removed and rebuilt.
    With a held-out split, DIR/heldout/ is claimed on its own (`_prepare_heldout`).
    """
    # An unfinished held-out set alone (killed before the training side began) is resumed
    # by its own claim, not a reason to refuse DIR.
    ignored = {HELDOUT_DIR} if "split" in identity else set()
    if not any(p.name not in ignored for p in out.iterdir()):
        return {}
    if overwrite:
        _remove_ours(out)
        return {}
    previous = None
    old_records: list[dict] = []
    if (out / MANIFEST).is_file():
        previous = _read_json(out / MANIFEST) or {}
        old_records = previous.get("shards", [])
    elif (out / PARTIAL_DIR / _PARAMS).is_file():
        previous = _read_json(out / PARTIAL_DIR / _PARAMS)
        for path in sorted((out / PARTIAL_DIR).glob("shard-*.hdf5.json")):
            if (record := _read_json(path)) is not None:
                old_records.append(record)
    elif (out / PARTIAL_DIR).is_dir():
        previous = identity  # killed before it saved its parameters: nothing of it is kept
    if previous is None or previous.get("kind", KIND_PRETRAINING) != KIND_PRETRAINING:
        raise UserError(
            f"--out {out} is not empty and was not made by `nvlm data pretraining`",
            hint="use another --out, or --overwrite to write into it anyway",
        )
    difference = identity_difference(previous, identity)
    if difference:
        raise UserError(
            f"--out {out} was made with other parameters: {difference}",
            hint="use another --out, or --overwrite to replace it",
        )
    old_split, new_split = _split_of(previous), _split_of(identity)
    if old_split != new_split:
        raise UserError(
            f"--out {out} was made with another held-out split: {old_split} (now {new_split})",
            hint="use another --out, or --overwrite to replace it",
        )
    kept: dict[int, dict] = {}
    for record in old_records:
        index = int(record["name"].split("-")[1].split(".")[0])
        path = out / record["name"]
        if index < shards and path.is_file() and sha256_file(path) == record["sha256"]:
            kept[index] = record
    _remove_unrecorded(out, {record["name"] for record in kept.values()})
    return kept


def _split_of(identity: dict) -> str:
    """The held-out split of an identity or manifest, in words that tell two splits apart."""
    split = identity.get("split")
    if not split:
        return "none"
    return (
        f"{split['heldout_documents']} of {split['documents']} documents held out "
        f"(--holdout-documents {split['requested']:g} --seed {split['seed']}, "
        f"sha256 {split['heldout_sha256'][:12]})"
    )


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _temporaries(directory: Path) -> list[Path]:
    """nvlm's temporary files in `directory` (H5Output's and atomic writes' hidden names, and
    the `.tmp` suffix of earlier versions)."""
    return [
        *directory.glob(".shard-*.tmp"),
        *directory.glob(f".{MANIFEST}.*.tmp"),
        *directory.glob(f".{VOCAB_COPY}.*.tmp"),
        *directory.glob("shard-*.hdf5.tmp"),
    ]


def _remove_unrecorded(out: Path, keep: set[str]) -> None:
    """Remove shards not named in `keep`, temporary files and token spills."""
    for path in [*out.glob("shard-*.hdf5"), *_temporaries(out)]:
        if path.name not in keep:
            path.unlink(missing_ok=True)
    partial = out / PARTIAL_DIR
    if partial.is_dir():
        for path in partial.iterdir():
            record_of_kept = path.name.endswith(".hdf5.json") and path.name[:-5] in keep
            if path.name != _PARAMS and not record_of_kept and path.is_file():
                path.unlink(missing_ok=True)


def _remove_ours(out: Path) -> None:
    heldout = out / HELDOUT_DIR
    if heldout.is_dir():
        # Only nvlm's files in it too; the directory goes if that leaves it empty.
        _remove_ours(heldout)
        if not any(heldout.iterdir()):
            heldout.rmdir()
    for path in [out / MANIFEST, out / PARTIAL_DIR, out / VOCAB_COPY, *out.glob("shard-*.hdf5"),
                 *_temporaries(out)]:  # fmt: skip
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _run_jobs(jobs: list[WorkerJob], on_record, progress) -> list[dict]:
    built: list[dict] = []

    def handle(kind: str, payload: dict) -> None:
        if kind == "tokens" and progress is not None:
            progress.on_tokens(payload["documents"], payload["sentences"], payload["tokens"])
        elif kind == "instances" and progress is not None:
            progress.on_instances(payload["instances"])
        elif kind == "shard":
            on_record(payload)
            built.append(payload)
            if progress is not None:
                progress.on_shard(payload)

    if len(jobs) == 1:
        # In-process: no start-up cost, and the tokenizer may use every core.
        run_worker(jobs[0], handle)
        return built
    # spawn, not fork: the parent runs a progress thread, and forking a threaded process can
    # deadlock; spawned children also start with a clean tokenizer thread pool.
    ctx = mp.get_context("spawn")
    messages = ctx.Queue()
    procs = [ctx.Process(target=worker_main, args=(job, messages), daemon=True) for job in jobs]
    for proc in procs:
        proc.start()
    try:
        done = 0
        while done < len(procs):
            try:
                kind, payload = messages.get(timeout=0.5)
            except queue.Empty:
                for i, proc in enumerate(procs):
                    if proc.exitcode not in (None, 0):
                        raise RunFailed(f"worker {i} died (exit code {proc.exitcode})") from None
                continue
            if kind == "done":
                done += 1
            elif kind == "user_error":
                raise UserError(payload["message"])
            elif kind == "run_failed":
                raise RunFailed(payload["message"])
            elif kind == "error":
                raise RunFailed("a data worker failed:\n" + payload["traceback"])
            else:
                handle(kind, payload)
        for proc in procs:
            proc.join()
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join()
    return built


def _clean_up(out: Path, partial: Path) -> None:
    """After a failure: keep finished shards that have their record (a rerun keeps them) and
    the state that lists them; remove everything else the run wrote."""
    recorded = {p.name[: -len(".json")] for p in partial.glob("shard-*.hdf5.json")}
    _remove_unrecorded(out, recorded)
    if not recorded:
        shutil.rmtree(partial, ignore_errors=True)


def _manifest(
    cfg: PretrainingConfig, identity: dict, records: dict[int, dict], vocab: Vocab, role: str
) -> dict:
    shards = [records[i] for i in sorted(records)]
    counts = {
        key: sum(r[key] for r in shards)
        for key in ("documents", "sentences", "tokens", "instances", "masked_tokens")
    }
    return {
        "kind": KIND_PRETRAINING,
        "format_version": FORMAT_VERSION,
        "nvlm_version": __version__,
        "model": cfg.model,
        "parameters": identity["parameters"],
        "inputs": identity["inputs"],
        "vocab": identity["vocab"],
        "datasets": {
            name: {"dtype": dtype.name, "shape": ["instances", *shape]}
            for name, (dtype, shape) in schema(cfg.model, cfg.seq_len, cfg.max_predictions).items()
        },
        "next_sentence_labels": {"0": "IsNext (B follows A)", "1": "random B"}
        if cfg.model == "bert"
        else None,
        "counts": counts,
        **({"split": {"role": role, **identity["split"]}} if "split" in identity else {}),
        "shards": shards,
    }
