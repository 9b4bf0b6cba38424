"""Where `nvlm data download` gets each data set, and the checksums it must match.

Pinned checksums (we cannot download here, so each value is taken from public code that pins
the same official file; where two independent sources agree we say so):

* SQuAD 1.1 train/dev sha256 — facebookresearch/ParlAI, parlai/tasks/squad/build.py; the same
  values appear in quantapix/qnarre and stagedml/stagedml (fetchsquad.py). NVIDIA's
  DeepLearningExamples squad_download.sh publishes md5 981b29407e0affa3b1b156f72073b945 (train)
  and 3e85deb501d4e538b6bc56f786231552 (dev) for the same files.
* SQuAD 2.0 train/dev sha256 — facebookresearch/ParlAI, parlai/tasks/squad2/build.py; the same
  values in quantapix/qnarre.
* WikiText-2 / WikiText-103 (word level, v1 zips) sha256 — dellison/WikiText.jl
  (src/WikiText.jl, DataDeps registration); the same values in quantapix/qnarre. A third
  project records 242ba0f2... for wikitext-103-v1.zip fetched from wikitext.smerity.com, the
  current host after Salesforce's S3 bucket, so both URLs serve the same bytes.
* Wikipedia: no pin is possible (the dump changes monthly); the dump is checked against the
  sha1 the dump itself publishes (`<lang>wiki-latest-sha1sums.txt`, same directory).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Artifact:
    """One file to fetch and verify.

    Args:
        filename: name on disk (and in a --from directory).
        urls: tried in order; later ones are mirrors.
        checksum: "sha256:<hex>", "md5:<hex>" or "sha1:<hex>"; empty = resolved at run time.
        members: for a zip, the members to extract (paths inside the archive).
    """

    filename: str
    urls: tuple[str, ...]
    checksum: str
    members: tuple[str, ...] = ()


_SQUAD = "https://rajpurkar.github.io/SQuAD-explorer/dataset/"
_WIKITEXT_HOSTS = (
    "https://wikitext.smerity.com/",
    "https://s3.amazonaws.com/research.metamind.io/wikitext/",
)


def _squad(name: str, sha256: str) -> Artifact:
    return Artifact(name, (_SQUAD + name,), "sha256:" + sha256)


def _wikitext(corpus: str, zip_name: str, sha256: str) -> Artifact:
    members = tuple(f"{corpus}/wiki.{split}.tokens" for split in ("train", "valid", "test"))
    return Artifact(
        zip_name, tuple(h + zip_name for h in _WIKITEXT_HOSTS), "sha256:" + sha256, members
    )


# (dataset, version) -> artifacts. Tests swap this table for one describing their own files.
SOURCES: dict[tuple[str, str | None], tuple[Artifact, ...]] = {
    ("squad", "1.1"): (
        _squad(
            "train-v1.1.json", "3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955"
        ),
        _squad("dev-v1.1.json", "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9"),
    ),
    ("squad", "2.0"): (
        _squad(
            "train-v2.0.json", "68dcfbb971bd3e96d5b46c7177b16c1a4e7d4bdef19fb204502738552dede002"
        ),
        _squad("dev-v2.0.json", "80a5225e94905956a6446d296ca1093975c4d3b3260f1d6c8f68bc2ab77182d8"),
    ),
    ("wikitext-2", None): (
        _wikitext(
            "wikitext-2",
            "wikitext-2-v1.zip",
            "92675f1d63015c1c8b51f1656a52d5bdbc33aafa60cc47a218a66e7ee817488c",
        ),
    ),
    ("wikitext-103", None): (
        _wikitext(
            "wikitext-103",
            "wikitext-103-v1.zip",
            "242ba0f20b329cfdf1ccc61e9e9e5b59becf189db7f7a81cd2a0e2fc31539590",
        ),
    ),
}

SQUAD_VERSIONS = ("1.1", "2.0")
DATASETS = ("squad", "wikitext-2", "wikitext-103", "wikipedia")


def wikipedia_urls(lang: str) -> tuple[str, str]:
    """(dump URL, sha1sums URL) of the latest pages-articles dump for a language."""
    base = f"https://dumps.wikimedia.org/{lang}wiki/latest/"
    return (
        base + f"{lang}wiki-latest-pages-articles.xml.bz2",
        base + f"{lang}wiki-latest-sha1sums.txt",
    )
