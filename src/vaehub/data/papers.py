"""The text corpora of the collapse papers, by name, from the files their code reads.

He et al. (2019) train on Yahoo Answers and Yelp reviews as Yang et al. (2017) prepared
them; Li et al. (2019) add a short Yelp and SNLI's sentences. Both papers' code fetches the
same kind of archive (`prepare_data.py` of github.com/jxhe/vae-lagging-encoder and of
github.com/bohanli/vae-pretraining-encoder: a `datasets.tar.gz` whose folder `datasets/`
holds one folder per corpus). The files vaehub expects, under `--data_dir` (the
`datasets/` folder or the corpus' own folder):

| `--dataset` | files | line format |
|---|---|---|
| `yahoo` | `yahoo_data/yahoo.{train,valid,test}.txt` | `label<TAB>text` |
| `yelp` | `yelp_data/yelp.{train,valid,test}.txt` | `label<TAB>text` |
| `short_yelp` | `short_yelp_data/short_yelp.{train,valid,test}.txt` | `label<TAB>text` |
| `snli` | `snli_data/snli.{train,valid,test}.txt` | `text` |

The text is already tokenized (words split by spaces, rare words written `<unk>`), and the
papers' vocabulary is every word of the training file; the labels (topic, rating) are kept
in a `label` column and not trained on.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import DatasetDict


SPLIT_FILES = {"train": "train", "validation": "valid", "test": "test"}
# How far a vocabulary may stray from the published size before a warning: the papers
# print their sizes rounded (20K), and the count depends on how <unk> is counted.
VOCABULARY_TOLERANCE = 0.05


@dataclass(frozen=True)
class PaperCorpus:
    """One corpus of the papers: where its files lie and what the papers say they hold."""

    name: str
    folder: str
    stem: str
    labelled: bool
    counts: dict[str, int]
    vocabulary: int
    paper: str
    source: str

    def files(self, data_dir: str) -> dict[str, str]:
        """The split files under `data_dir`: the archive's `datasets/` folder (holding
        `folder`) or `folder` itself."""
        inside = os.path.join(data_dir, self.folder)
        base = inside if os.path.isdir(inside) else data_dir
        return {
            split: os.path.join(base, f"{self.stem}.{suffix}.txt")
            for split, suffix in SPLIT_FILES.items()
        }


# The published sizes (sentences per split, vocabulary) from the papers' dataset tables.
HE_SOURCE = (
    "the archive datasets.tar.gz that prepare_data.py of github.com/jxhe/vae-lagging-encoder "
    "downloads (He et al. 2019); unpack it and give --data_dir its datasets/ folder"
)
LI_SOURCE = (
    "the archive datasets.tar.gz that prepare_data.py of "
    "github.com/bohanli/vae-pretraining-encoder downloads (Li et al. 2019); unpack it and "
    "give --data_dir its datasets/ folder"
)
_SPLITS = {"train": 100000, "validation": 10000, "test": 10000}
PAPER_CORPORA = {
    "yahoo": PaperCorpus("yahoo", "yahoo_data", "yahoo", True, _SPLITS, 20000,
                         "Yang et al. 2017; He et al. 2019", HE_SOURCE),
    "yelp": PaperCorpus("yelp", "yelp_data", "yelp", True, _SPLITS, 20000,
                        "Yang et al. 2017; He et al. 2019", HE_SOURCE),
    "short_yelp": PaperCorpus("short_yelp", "short_yelp_data", "short_yelp", True, _SPLITS,
                              8411, "Li et al. 2019", LI_SOURCE),
    "snli": PaperCorpus("snli", "snli_data", "snli", False, _SPLITS, 9990,
                        "Li et al. 2019", LI_SOURCE),
}  # fmt: skip
PAPER_DATASET_NAMES = {
    "yahoo": {"name": "Yahoo Answers (Yang et al. 2017)", "type": "yahoo"},
    "yelp": {"name": "Yelp reviews (Yang et al. 2017)", "type": "yelp"},
    "short_yelp": {"name": "Short Yelp (Li et al. 2019)", "type": "short_yelp"},
    "snli": {"name": "SNLI sentences (Li et al. 2019)", "type": "snli"},
}


def find_paper_corpus(data_dir: str) -> str | None:
    """The name of the paper corpus whose train file lies in `data_dir`, if one does."""
    for name, corpus in PAPER_CORPORA.items():
        if os.path.isfile(corpus.files(data_dir)["train"]):
            return name
    return None


class _SplitLabel:
    """`label<TAB>text` lines into `label` and `text`, naming the line that has no tab."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        labels, texts = [], []
        for line, index in zip(list(batch["text"]), indices, strict=True):
            if not line.strip():
                labels.append(None)
                texts.append("")
                continue
            label, tab, text = line.partition("\t")
            if not tab:
                raise ValueError(
                    f"{self.path}, line {index + 1}: no tab between a label and the text "
                    "(this corpus' lines read `label<TAB>text`)."
                )
            labels.append(label)
            texts.append(text)
        return {"label": labels, "text": texts}


def load_paper_corpus(name: str, data_dir: str | None) -> DatasetDict:
    """The `train` / `validation` / `test` splits of a paper corpus (`text`, and `label`
    where the lines carry one), checked against the published sizes: a warning when the
    files hold another number of sentences (a sample) or, for the full files, another
    vocabulary size."""
    # Imported here: the command line reads this module's names without loading datasets.
    from datasets import DatasetDict, load_dataset

    from vaehub.data.text import check_text_file

    corpus = PAPER_CORPORA[name]
    if data_dir is None:
        raise ValueError(f"--dataset {name} needs --data_dir: the folder of {corpus.source}.")
    files = corpus.files(data_dir)
    missing = [path for path in files.values() if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(
            f"--dataset {name}: {', '.join(missing)} not found. The files come from "
            f"{corpus.source}."
        )
    splits = {}
    for split, path in files.items():
        check_text_file(path, split)
        data = load_dataset("text", data_files={split: path}, split=split)
        if corpus.labelled:
            # Line numbers: the text builder keeps blank lines, so a row's index is its line.
            data = data.map(_SplitLabel(path), batched=True, with_indices=True,
                            desc="splitting labels")  # fmt: skip
        splits[split] = data.filter(lambda row: bool(row["text"].strip()), desc="blank lines")
    check_paper_corpus(name, splits)
    return DatasetDict(splits)


def check_paper_corpus(name: str, splits: dict[str, Any]) -> None:
    """Warn when the splits' sizes or the training vocabulary differ from the published
    ones; the vocabulary is checked only on the full files (a sample has fewer words)."""
    corpus = PAPER_CORPORA[name]
    counts = {split: len(data) for split, data in splits.items()}
    if counts != corpus.counts:
        shown = ", ".join(f"{s} {counts[s]} of {corpus.counts[s]}" for s in corpus.counts)
        warnings.warn(
            f"--dataset {name}: the files hold another number of sentences than the papers "
            f"({corpus.paper}) give: {shown}. Results on them are not comparable with the "
            "papers'; the vocabulary size is not checked.",
            stacklevel=3,
        )
        return
    words: set[str] = set()
    for line in splits["train"]["text"]:
        words.update(line.split())
    if abs(len(words) - corpus.vocabulary) > VOCABULARY_TOLERANCE * corpus.vocabulary:
        warnings.warn(
            f"--dataset {name}: the training file has {len(words)} distinct words; the papers "
            f"({corpus.paper}) give about {corpus.vocabulary}. Check that these are the "
            "published files.",
            stacklevel=3,
        )
