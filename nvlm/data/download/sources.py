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
* GLUE (per-task zips of dl.fbaipublicfiles.com/glue/data/, the URLs of nyu-mll's
  download_glue_data.py; MRPC as Microsoft's two text files on SentEval's mirror plus GLUE's dev
  ids) sha256 and sizes — huggingface/datasets, datasets/glue/dataset_infos.json
  (`download_checksums`); the CoLA, QNLI, QQP and WNLI zips and both MRPC files carry the same
  values in a second, independent project (a dataset-atlas conversion script pinning GLUE), and
  CoLA's in chengchingwen/Transformers.jl's GLUE DataDeps.
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


_GLUE = "https://dl.fbaipublicfiles.com/glue/data/"
_SENTEVAL = "https://dl.fbaipublicfiles.com/senteval/senteval_data/"
_TRAIN_DEV_TEST = ("train", "dev", "test")


def _glue(zip_name: str, folder: str, sha256: str, splits=_TRAIN_DEV_TEST) -> Artifact:
    """A GLUE task zip; its files are `<folder>/<split>.tsv` (unpacked as `DIR/<folder>/`)."""
    members = tuple(f"{folder}/{split}.tsv" for split in splits)
    return Artifact(zip_name, (_GLUE + zip_name,), "sha256:" + sha256, members)


# GLUE task -> its files; sizes in bytes after each (the published num_bytes).
GLUE: dict[str, tuple[Artifact, ...]] = {
    "cola": (_glue("CoLA.zip", "CoLA", "f212fcd832b8f7b435fb991f101abf89f96b933ab400603bf198960dfc32cbff"),),  # 376971
    "sst2": (_glue("SST-2.zip", "SST-2", "d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa"),),  # 7439277
    "qqp": (_glue("QQP-clean.zip", "QQP", "40e7c862c04eb26ee04b67fd900e76c45c6ba8e6d8fab4f8f1f8072a1a3fbae0"),),  # 41696084
    "stsb": (_glue("STS-B.zip", "STS-B", "e60a6393de5a8b5b9bac5020a1554b54e3691f9d600b775bd131e613ac179c85"),),  # 802872
    "mnli": (_glue("MNLI.zip", "MNLI", "e7c1d896d26ed6caf700110645df426cc2d8ebf02a5ab743d5a5c68ac1c83633",
                   ("train", "dev_matched", "dev_mismatched", "test_matched", "test_mismatched")),),  # 312783507
    "qnli": (_glue("QNLIv2.zip", "QNLI", "e634e78627a29adaecd4f955359b22bf5e70f2cbd93b493f2d624138a0c0e5f5"),),  # 10627589
    "rte": (_glue("RTE.zip", "RTE", "6bf86de103ecd335f3441bd43574d23fef87ecc695977a63b82d5efb206556ee"),),  # 697150
    "wnli": (_glue("WNLI.zip", "WNLI", "ae0e8e4d16f4d46d4a0a566ec7ecceccfd3fbfaa4a7a4b4e02848c0f2561ac46"),),  # 28999
    # MRPC is not a GLUE zip: train.tsv/dev.tsv/test.tsv are built from these (nvlm.data.download.mrpc).
    "mrpc": (
        Artifact("msr_paraphrase_train.txt", (_SENTEVAL + "msr_paraphrase_train.txt",),
                 "sha256:60a9b09084528f0673eedee2b69cb941920f0b8cd0eeccefc464a98768457f89"),  # 1047044
        Artifact("msr_paraphrase_test.txt", (_SENTEVAL + "msr_paraphrase_test.txt",),
                 "sha256:a04e271090879aaba6423d65b94950c089298587d9c084bf9cd7439bd785f784"),  # 441275
        Artifact("mrpc_dev_ids.tsv", (_GLUE + "mrpc_dev_ids.tsv",),
                 "sha256:971d7767d81b997fd9060ade0ec23c4fc31cbb226a55d1bd4a1bac474eb81dc7"),  # 6222
    ),
}  # fmt: skip

# (dataset, version) -> artifacts; GLUE's are ("glue", task). Tests swap this table for one describing their own files.
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

SOURCES.update({("glue", task): artifacts for task, artifacts in GLUE.items()})

SQUAD_VERSIONS = ("1.1", "2.0")
DATASETS = ("squad", "wikitext-2", "wikitext-103", "wikipedia", "glue")
# The GLUE folders of `nvlm data download glue` (those of download_glue_data.py's output).
GLUE_FOLDERS = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP",
                "mnli": "MNLI", "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI"}  # fmt: skip


def wikipedia_urls(lang: str) -> tuple[str, str]:
    """(dump URL, sha1sums URL) of the latest pages-articles dump for a language."""
    base = f"https://dumps.wikimedia.org/{lang}wiki/latest/"
    return (
        base + f"{lang}wiki-latest-pages-articles.xml.bz2",
        base + f"{lang}wiki-latest-sha1sums.txt",
    )
