"""One worker of `nvlm data pretraining`: tokenize the documents of its shards, then build them.

A worker reads the whole input (reading is cheap next to tokenizing) and keeps only documents
whose shard it owns: document d belongs to shard d mod shards, and shard s to worker s mod
workers. With a held-out split (`HoldoutSplit`) a job sees only the documents of its side
(`role`), numbered again 0, 1, ... in input order before taking them modulo shards. It tokenizes them in large batches (`encode_batch_fast`, Rust), spills the ids to disk
(`TokenSpill`), and then builds each owned shard in turn. It talks to the parent only through
`report(kind, payload)`: a multiprocessing queue in a child, a direct call in-process.
"""

from __future__ import annotations

import itertools
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nvlm.data.pretraining.config import PretrainingConfig
from nvlm.data.pretraining.shard_builder import build_shard
from nvlm.data.pretraining.shard_format import shard_name
from nvlm.data.pretraining.token_spill import TokenSpill
from nvlm.data.pretraining.tokenized_shard import TokenizedShard
from nvlm.data.sentences import split_document
from nvlm.data.text_reader import iter_documents
from nvlm.data.vocab import Vocab
from nvlm.data.worker_lifetime import die_with_parent
from nvlm.errors import RunFailed, UserError
from nvlm.outputs import disk_full, is_disk_full, write_json

# Sentences per encode_batch call: big enough to amortise the Python <-> Rust crossing.
TOKENIZE_BATCH = 8192

Report = Callable[[str, dict], None]


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker needs, picklable for a spawned process."""

    cfg: PretrainingConfig
    inputs: tuple[str, ...]
    vocab_path: str
    out_dir: str
    spill_dir: str
    owned: tuple[int, ...]
    threads: int  # tokenizer (rayon) threads for this worker
    parent_pid: int = 0  # a spawned worker dies with this process
    # "all" (no split), or the side of a held-out split this job builds, with the held-out
    # document indices (input order) that decide it.
    role: str = "all"
    heldout: frozenset[int] = frozenset()


def record_path(spill_dir: Path, index: int) -> Path:
    """Where the record (sha256, counts) of a finished shard is kept until the manifest is
    written: its presence is what lets a rerun keep the shard."""
    return spill_dir / (shard_name(index) + ".json")


def run_worker(job: WorkerJob, report: Report) -> None:
    cfg = job.cfg
    vocab = Vocab.load(job.vocab_path)
    tokenizer = vocab.tokenizer(lowercase=cfg.lowercase)
    owned = set(job.owned)
    spill_dir = Path(job.spill_dir)
    spills = {s: TokenSpill(spill_dir / shard_name(s)) for s in job.owned}
    try:
        try:
            _tokenize(job, tokenizer, owned, spills, report)
            for spill in spills.values():
                spill.close()
        except OSError as exc:
            if is_disk_full(exc):
                written = sum(spill.bytes_written for spill in spills.values())
                raise disk_full(spill_dir, written) from exc
            raise
        for s in job.owned:
            tokens = TokenizedShard(spills[s].stem)
            if cfg.model == "bert" and tokens.documents < 2:
                raise UserError(
                    f"shard {s} got {tokens.documents} non-empty document(s); BERT needs two or "
                    "more per shard (random next segments come from another document)",
                    hint="use fewer --shards",
                )
            record = build_shard(
                s, tokens, cfg, vocab, Path(job.out_dir),
                on_instances=lambda n: report("instances", {"instances": n}),
            )  # fmt: skip
            tokens.close()
            spills[s].remove()
            # Written here, right after the shard is complete, not by the parent: a parent
            # killed now would lose the record, and its rerun would build the shard again.
            write_json(record_path(spill_dir, s), record)
            report("shard", record)
    finally:
        for spill in spills.values():
            spill.remove()


def _tokenize(job: WorkerJob, tokenizer, owned: set[int], spills: dict, report: Report) -> None:
    cfg = job.cfg
    batch_docs: list[int] = []  # shard of each document in the batch
    batch_counts: list[int] = []  # sentences of each document
    batch_sents: list[str] = []
    paths = [Path(p) for p in job.inputs]
    want_heldout = job.role == "heldout"
    position = -1  # index of the document among those of this job's side
    for doc_index, lines in enumerate(iter_documents(paths, cfg.errors)):
        # Skipped before tokenizing: the other side's sentences never reach this job's shards,
        # so no instance (nor a random next segment) can take them.
        if job.role != "all" and (doc_index in job.heldout) != want_heldout:
            continue
        position += 1
        shard = position % cfg.shards
        if shard not in owned:
            continue
        sentences = split_document(lines, cfg.lang) if cfg.split_sentences else lines
        batch_docs.append(shard)
        batch_counts.append(len(sentences))
        batch_sents.extend(sentences)
        if len(batch_sents) >= TOKENIZE_BATCH:
            report("tokens", _flush(tokenizer, batch_docs, batch_counts, batch_sents, spills))
            batch_docs, batch_counts, batch_sents = [], [], []
    if batch_sents:
        report("tokens", _flush(tokenizer, batch_docs, batch_counts, batch_sents, spills))


def _flush(
    tokenizer, docs: list[int], counts: list[int], sentences: list[str], spills: dict
) -> dict:
    encodings = tokenizer.encode_batch_fast(sentences, add_special_tokens=False)
    id_lists = [e.ids for e in encodings]
    lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
    flat = np.fromiter(
        itertools.chain.from_iterable(id_lists), dtype=np.int32, count=int(lengths.sum())
    )
    doc_shard = np.asarray(docs, dtype=np.int64)
    doc_counts = np.asarray(counts, dtype=np.int64)
    # Sentences that tokenize to nothing (only control characters, say) are dropped, and with them
    # documents left empty.
    sent_doc = np.repeat(np.arange(len(docs)), doc_counts)
    keep = lengths > 0
    kept_per_doc = np.bincount(sent_doc[keep], minlength=len(docs))
    doc_keep = kept_per_doc > 0
    sent_shard = doc_shard[sent_doc]
    token_shard = np.repeat(sent_shard, lengths)
    # Group by shard with stable sorts: order inside each shard stays the input order.
    for s, tok_idx, sent_idx, doc_idx in _group(token_shard, sent_shard[keep], doc_shard[doc_keep]):
        spills[s].add(flat[tok_idx], lengths[keep][sent_idx], kept_per_doc[doc_keep][doc_idx])
    return {
        "documents": int(doc_keep.sum()),
        "sentences": int(keep.sum()),
        "tokens": len(flat),
    }


def _group(token_shard: np.ndarray, sent_shard: np.ndarray, doc_shard: np.ndarray):
    """Yield (shard, token indices, sentence indices, document indices) per shard present."""
    groups = []
    for keys in (token_shard, sent_shard, doc_shard):
        order = np.argsort(keys, kind="stable")
        groups.append((order, keys[order]))
    for s in np.unique(doc_shard).tolist():
        yield (
            s,
            *(order[np.searchsorted(k, s) : np.searchsorted(k, s, "right")] for order, k in groups),
        )


def worker_main(job: WorkerJob, queue) -> None:
    """Entry point of a spawned worker process: run, and report errors as messages."""
    die_with_parent(job.parent_pid)
    # Each worker gets its share of the cores for the tokenizer's thread pool (read once, at the
    # pool's first use, so it must be set before any encoding).
    os.environ["RAYON_NUM_THREADS"] = str(max(1, job.threads))
    try:
        run_worker(job, lambda kind, payload: queue.put((kind, payload)))
    except UserError as exc:
        queue.put(("user_error", {"message": str(exc)}))
    except RunFailed as exc:  # a full disk: one line, exit 1
        queue.put(("run_failed", {"message": str(exc)}))
    except BaseException:
        queue.put(("error", {"traceback": traceback.format_exc()}))
    finally:
        queue.put(("done", {}))
