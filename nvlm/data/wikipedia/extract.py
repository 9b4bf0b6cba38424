"""`nvlm data wikipedia`: a pages-articles dump -> text files ready for `nvlm data pretraining`.

One reader (this process) streams pages out of the bz2 XML; a pool of worker processes strips
the markup (mwparserfromhell) and splits sentences (pysbd). Pages go out in batches with at
most two batches in flight, so memory stays bounded however fast the reader is. Results come
back in page order, and article k goes to file k mod shards: the output does not depend on the
worker count. Each file holds one sentence per line and a blank line between articles.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

from nvlm import __version__
from nvlm.data.sentences import split_sentences, supported_languages
from nvlm.data.wikipedia.dump import Page, iter_pages
from nvlm.data.wikipedia.markup import clean_article, is_skipped
from nvlm.data.worker_lifetime import die_with_parent
from nvlm.errors import UserError
from nvlm.outputs import check_writable_dir, disk_full, is_disk_full, refuse_inputs, write_json

KIND_WIKIPEDIA = "wikipedia-text"
FILE_PATTERN = "wiki-{:05d}.txt"
_BATCH_PAGES = 64


def article_sentences(job: tuple[str, str, str]) -> list[str]:
    """Worker task: (title, wikitext, lang) -> the article's sentences (empty = nothing kept)."""
    title, text, lang = job
    if is_skipped(title, text):
        return []
    out: list[str] = []
    for paragraph in clean_article(text):
        out.extend(split_sentences(paragraph, lang))
    return out


def extract_wikipedia(
    dump: Path,
    out: Path,
    *,
    workers: int = 1,
    shards: int = 4,
    lang: str = "en",
    overwrite: bool = False,
    on_pages: Callable[[int, int], None] | None = None,
) -> dict:
    """Write `out/wiki-XXXXX.txt` (shards files) and `out/manifest.json`; return the counts."""
    started = time.perf_counter()
    if dump.is_dir():
        raise UserError(
            f"the dump {dump} is a directory, not a file",
            hint="pass the pages-articles .xml.bz2 file inside it",
        )
    if not dump.is_file():
        raise UserError(
            f"dump not found: {dump}", hint="get one with `nvlm data download wikipedia`"
        )
    if not 1 <= shards <= 100_000:
        raise UserError(f"--shards must be between 1 and 100000, not {shards}")
    if workers < 1:
        raise UserError(f"--workers must be at least 1, not {workers}")
    if lang not in supported_languages():
        raise UserError(
            f"no sentence splitter for --lang {lang!r}",
            hint=f"use one of {', '.join(supported_languages())}",
        )
    refuse_inputs(out, {"DUMP": dump})
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a directory")
    check_writable_dir(out)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"--out {out} is not empty", hint="use another --out, or --overwrite")
        for path in [*out.glob("wiki-*.txt"), *out.glob("wiki-*.txt.tmp"), out / "manifest.json"]:
            path.unlink(missing_ok=True)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    finals = [out / FILE_PATTERN.format(i) for i in range(shards)]
    tmps = [p.with_name(p.name + ".tmp") for p in finals]
    handles = [open(p, "w", encoding="utf-8") for p in tmps]
    counts = {
        "pages": 0,
        "articles": 0,
        "skipped_namespace": 0,
        "redirects": 0,
        "empty": 0,
        "documents": 0,
        "sentences": 0,
    }
    pool = None
    try:
        pages = _articles(iter_pages(dump), counts)
        if workers > 1:
            # Workers die with this process, even when it is killed (SIGKILL runs no clean-up).
            pool = mp.get_context("spawn").Pool(
                workers, initializer=die_with_parent, initargs=(os.getpid(),)
            )
        for results in _pipelined(pages, lang, pool):
            for sentences in results:
                if not sentences:
                    counts["empty"] += 1
                    continue
                handles[counts["documents"] % shards].write("\n".join(sentences) + "\n\n")
                counts["documents"] += 1
                counts["sentences"] += len(sentences)
            if on_pages is not None:
                on_pages(counts["pages"], counts["documents"])
        for handle in handles:
            handle.close()
        for tmp, final in zip(tmps, finals, strict=True):
            os.replace(tmp, final)
    except BaseException as exc:
        written = sum(t.stat().st_size for t in tmps if t.exists())
        for handle in handles:
            try:
                handle.close()
            except OSError:
                pass  # a full disk fails the last flush; the file goes anyway
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        if is_disk_full(exc):
            raise disk_full(out, written) from exc
        raise
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    if counts["documents"] == 0:
        for final in finals:
            final.unlink(missing_ok=True)
        if created and not any(out.iterdir()):
            out.rmdir()
        raise UserError(f"{dump} holds no article text", hint="is it a pages-articles dump?")
    summary = {
        "kind": KIND_WIKIPEDIA,
        "nvlm_version": __version__,
        "dump": {"path": str(dump.resolve()), "size": dump.stat().st_size},
        "lang": lang,
        "files": [p.name for p in finals],
        "counts": counts,
    }
    write_json(out / "manifest.json", summary)
    return {
        **counts,
        "out": str(out),
        "files": shards,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _articles(pages: Iterator[Page], counts: dict) -> Iterator[tuple[str, str]]:
    for page in pages:
        counts["pages"] += 1
        if page.namespace != 0:
            counts["skipped_namespace"] += 1
        elif page.redirect:
            counts["redirects"] += 1
        else:
            counts["articles"] += 1
            yield page.title, page.text


def _pipelined(pages: Iterator[tuple[str, str]], lang: str, pool):
    """Yield the sentences of each page, batch by batch, in page order; the next batch is read
    while the pool works on the current one (two batches in flight at most)."""

    def batches():
        while batch := list(islice(pages, _BATCH_PAGES)):
            yield [(title, text, lang) for title, text in batch]

    if pool is None:
        for batch in batches():
            yield [article_sentences(job) for job in batch]
        return
    pending = None
    for batch in batches():
        future = pool.map_async(article_sentences, batch, chunksize=max(1, len(batch) // 8))
        if pending is not None:
            yield pending.get()
        pending = future
    if pending is not None:
        yield pending.get()
