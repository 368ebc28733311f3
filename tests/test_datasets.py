"""Any corpus through `datasets` (issue 33 §1): each file format trains a tiny model for a
couple of steps and evaluates it; a dataset repository served by the loopback Hub loads by
id and, once cached, without the server; tokenization is cached and reused; bad data is
refused naming the file and line or column; a corpus larger than a memory limit streams.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from datasets import Dataset, DatasetDict

from vaehub.commands.main import main
from vaehub.data.batching import BucketedStream
from vaehub.data.sources import DataArguments, load_corpus

WORDS = "the cat dog sat on a mat ran far away big small red blue old new".split()
# A model small enough for a couple of steps in well under a second.
TINY = ["--latent_size", "4", "--embedding_size", "16", "--encoder_hidden_size", "16",
        "--decoder_hidden_size", "16", "--per_device_train_batch_size", "16",
        "--use_cpu", "True", "--report_to", "none", "--save_strategy", "no",
        "--iw_samples", "2"]  # fmt: skip


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(count)]


def write(path: Path, texts: list[str], column: str = "body") -> Path:
    """`texts` in the format `path`'s extension names, the text in `column` (txt: a line
    each); csv and parquet get an `id` column beside it."""
    kind = path.suffix
    if kind == ".txt":
        path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    elif kind == ".csv":
        pd.DataFrame({"id": range(len(texts)), column: texts}).to_csv(path, index=False)
    elif kind == ".jsonl":
        path.write_text("".join(json.dumps({column: t}) + "\n" for t in texts), encoding="utf-8")
    elif kind == ".json":
        path.write_text(json.dumps([{column: t} for t in texts]), encoding="utf-8")
    elif kind == ".parquet":
        pd.DataFrame({"id": range(len(texts)), column: texts}).to_parquet(path)
    return path


def train(output: Path, *data_flags: str, extra: tuple[str, ...] = ()) -> int:
    return main(["train", "--output_dir", str(output), *data_flags, *TINY, "--max_steps", "2",
                 *extra])  # fmt: skip


def evaluate(model: Path, *data_flags: str, split: str = "test") -> dict:
    output = model / f"eval_{split}_{len(list(model.iterdir()))}.json"
    code = main(["evaluate", str(model), *data_flags, "--split", split, "--iw-samples", "2",
                 "--no-progress", "--output", str(output)])  # fmt: skip
    assert code == 0
    return json.loads(output.read_text(encoding="utf-8"))


def cache_files(folder: Path) -> dict[str, int]:
    """The cache files `datasets` wrote under `folder` (its `map` results), with their
    modification times in ns: the same names and times after a run = nothing rewritten."""
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("cache-*.arrow")}


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """Each test its own `datasets` cache, so that none finds another's files."""
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")
    return tmp_path / "hf-datasets"


# --- every file format ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [".txt", ".csv", ".json", ".jsonl", ".parquet"])
def test_each_file_format_trains_and_evaluates(tmp_path, kind):
    train_file = write(tmp_path / f"train{kind}", sentences(200))
    valid_file = write(tmp_path / f"valid{kind}", sentences(30, seed=1))
    test_file = write(tmp_path / f"test{kind}", sentences(40, seed=2))
    run = tmp_path / "run"
    flags = ["--train_file", str(train_file), "--validation_file", str(valid_file),
             "--test_file", str(test_file), "--text_column", "body"]  # fmt: skip
    assert train(run, *flags) == 0
    recorded = json.loads((run / "eval_test.json").read_text(encoding="utf-8"))
    assert recorded["metrics"]["num_examples"] == 40
    assert recorded["dataset"]["name"] == train_file.name
    measured = evaluate(run, "--data", str(test_file), "--text_column", "body")
    assert measured["metrics"]["num_examples"] == 40
    assert measured["metrics"]["nll"] > 0


def test_a_missing_validation_split_is_cut_from_train_with_the_stated_fraction_and_seed(
    tmp_path,
):
    train_file = write(tmp_path / "train.csv", sentences(400))

    def validation(percentage: float, seed: int) -> list[str]:
        corpus = load_corpus(DataArguments(
            train_file=str(train_file), text_column="body",
            validation_split_percentage=percentage, validation_split_seed=seed,
        ))  # fmt: skip
        assert len(corpus["train"]) + len(corpus["validation"]) == 400
        return list(corpus["validation"]["text"])

    first = validation(10, 0)
    assert len(first) == 40
    assert validation(10, 0) == first
    assert validation(10, 1) != first
    assert len(validation(25, 0)) == 100


def test_a_save_to_disk_folder_trains_and_evaluates_by_split(tmp_path):
    folder = tmp_path / "saved"
    DatasetDict(
        train=Dataset.from_dict({"sentence": sentences(200)}),
        validation=Dataset.from_dict({"sentence": sentences(20, seed=1)}),
        test=Dataset.from_dict({"sentence": sentences(25, seed=2)}),
    ).save_to_disk(str(folder))
    run = tmp_path / "run"
    assert train(run, "--dataset_name", str(folder), "--text_column", "sentence") == 0
    measured = evaluate(run, "--dataset_name", str(folder), "--text_column", "sentence")
    assert measured["metrics"]["num_examples"] == 25
    assert measured["dataset"]["name"] == "saved"


def test_a_local_dataset_folder_is_read_as_datasets_infers_its_splits(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    write(folder / "train.jsonl", sentences(100))
    write(folder / "test.jsonl", sentences(15, seed=2))
    corpus = load_corpus(DataArguments(dataset_name=str(folder), text_column="body"))
    assert set(corpus) == {"train", "validation", "test"}
    assert len(corpus["test"]) == 15 and len(corpus["validation"]) == 5


# --- bad data ---------------------------------------------------------------------------------


def test_a_missing_text_column_names_the_file_and_the_columns_there_are(tmp_path):
    path = write(tmp_path / "train.csv", sentences(20), column="sentence")
    with pytest.raises(ValueError, match=r"the train file .*train\.csv has no column 'body'; "
                                         r"its columns are 'id', 'sentence'"):  # fmt: skip
        load_corpus(DataArguments(train_file=str(path), text_column="body"))


def test_a_column_of_numbers_is_not_taken_for_text(tmp_path):
    path = write(tmp_path / "train.parquet", sentences(20))
    with pytest.raises(ValueError, match=r"train\.parquet: column 'id' holds int64, not text"):
        load_corpus(DataArguments(train_file=str(path), text_column="id"))


@pytest.mark.parametrize("kind", [".csv", ".jsonl"])
def test_an_empty_split_names_its_file(tmp_path, kind):
    train_file = write(tmp_path / f"train{kind}", sentences(20))
    empty = tmp_path / f"valid{kind}"
    empty.write_text("id,body\n" if kind == ".csv" else '{"body": ""}\n{"body": "  "}\n',
                     encoding="utf-8")  # fmt: skip
    with pytest.raises(ValueError, match=rf"the validation file .*valid\{kind} holds no text"):
        load_corpus(DataArguments(
            train_file=str(train_file), validation_file=str(empty), text_column="body"
        ))  # fmt: skip


def test_bytes_that_are_not_utf8_are_named_by_file_and_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"body": "fine"}\n{"body": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=r"train\.jsonl is not UTF-8 text: byte 30 \(line 2\)"):
        load_corpus(DataArguments(train_file=str(path), text_column="body"))


def test_broken_json_names_the_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"body": "fine"}\n{"body": \n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"the train file .*\.jsonl could not be read as json"):
        load_corpus(DataArguments(train_file=str(path), text_column="body"))


def test_an_unknown_extension_and_conflicting_flags_are_refused(tmp_path):
    path = tmp_path / "train.xml"
    path.write_text("<a/>", encoding="utf-8")
    with pytest.raises(ValueError, match=r"train\.xml: vaehub reads .*\.csv"):
        load_corpus(DataArguments(train_file=str(path)))
    with pytest.raises(ValueError, match="name two corpora"):
        DataArguments(dataset="ptb", dataset_name="org/x")
    with pytest.raises(ValueError, match="--streaming reads --dataset_name or --train_file"):
        DataArguments(dataset="synthetic", streaming=True)


# --- cache ------------------------------------------------------------------------------------


def test_a_second_run_reuses_the_cached_tokenization_and_overwrite_cache_redoes_it(
    tmp_path, datasets_cache
):
    train_file = write(tmp_path / "train.csv", sentences(300))
    flags = ["--train_file", str(train_file), "--text_column", "body"]
    assert train(tmp_path / "first", *flags) == 0
    written = cache_files(datasets_cache)
    assert written, "the first run left no cache files"
    assert train(tmp_path / "second", *flags) == 0
    assert cache_files(datasets_cache) == written  # read, not written again
    assert train(tmp_path / "third", *flags, extra=("--overwrite_cache", "True")) == 0
    rewritten = cache_files(datasets_cache)
    assert any(rewritten[name] != time for name, time in written.items() if name in rewritten)


def test_preprocessing_workers_tokenize_the_same(tmp_path):
    from vaehub.data.text import tokenize_corpus
    from vaehub.models.text.tokenization import build_tokenizer

    train_file = write(tmp_path / "train.txt", sentences(300))
    corpus = load_corpus(DataArguments(train_file=str(train_file)))
    tokenizer = build_tokenizer(list(corpus["train"]["text"]))
    one = tokenize_corpus(corpus, tokenizer, 64, load_from_cache_file=False)
    two = tokenize_corpus(corpus, tokenizer, 64, load_from_cache_file=False, num_proc=2)
    assert list(two["train"]["input_ids"]) == list(one["train"]["input_ids"])


# --- the loopback Hub -------------------------------------------------------------------------


def add_dataset_repository(server, repo_id: str, files: dict[str, str]) -> None:
    """A dataset repository in the folder the loopback Hub (olah) serves datasets from."""
    from hub_server import GIT

    path = server.mirrors / "datasets" / repo_id
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True)
    for name, text in {"README.md": f"# {repo_id}\n", **files}.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text, encoding="utf-8")
    subprocess.run(GIT + ["add", "-A"], cwd=path, check=True)
    subprocess.run(GIT + ["commit", "-q", "-m", "add data"], cwd=path, check=True)


def silent_endpoint() -> tuple[socket.socket, str]:
    """A server that accepts connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}"


def run_python(script: str, *args: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          env={**os.environ, **environment}, timeout=240)  # fmt: skip


CACHED_RUN = """
import sys
from vaehub.commands.main import main
sys.exit(main(["train", "--output_dir", sys.argv[1], "--dataset_name", "org/corpus",
               "--text_column", "sentence", *sys.argv[2:]]))
"""


def test_a_hub_dataset_loads_by_id_and_then_from_the_cache_while_the_server_is_silent(
    hub_server, tmp_path, datasets_cache
):
    lines = lambda count, seed: "".join(  # noqa: E731
        json.dumps({"sentence": s}) + "\n" for s in sentences(count, seed)
    )
    add_dataset_repository(hub_server, "org/corpus", {
        "data/train.jsonl": lines(200, 0), "data/validation.jsonl": lines(20, 1),
        "data/test.jsonl": lines(25, 2),
    })  # fmt: skip
    run = tmp_path / "run"
    assert train(run, "--dataset_name", "org/corpus", "--text_column", "sentence") == 0
    assert json.loads((run / "eval_test.json").read_text())["dataset"]["type"] == "org/corpus"
    measured = evaluate(run, "--dataset_name", "org/corpus", "--text_column", "sentence")
    assert measured["metrics"]["num_examples"] == 25
    written = cache_files(datasets_cache)
    assert written

    listener, endpoint = silent_endpoint()
    environment = {"HF_ENDPOINT": endpoint, "VAEHUB_HUB_TIMEOUT": "1",
                   "HF_DATASETS_CACHE": str(datasets_cache)}  # fmt: skip
    try:
        cached = run_python(CACHED_RUN, str(tmp_path / "again"), *TINY, "--max_steps", "1",
                            environment=environment)  # fmt: skip
        # Nothing in the cache for this one: the silent server is named, soon.
        missing = run_python(CACHED_RUN.replace("org/corpus", "org/elsewhere"),
                             str(tmp_path / "none"), *TINY, environment=environment)  # fmt: skip
    finally:
        listener.close()
    assert cached.returncode == 0, cached.stderr[-3000:]
    assert (tmp_path / "again" / "model.safetensors").is_file()
    assert cache_files(datasets_cache) == written  # nothing tokenized again
    assert missing.returncode == 1, missing.stderr[-3000:]
    server = endpoint.removeprefix("http://")
    assert "loading the dataset org/elsewhere failed" in missing.stderr, missing.stderr[-3000:]
    assert f"the Hub server {server} did not answer within 1 s" in missing.stderr


# --- streaming --------------------------------------------------------------------------------


def test_bucketed_stream_yields_every_row_once_in_batches_of_one_length_where_it_can():
    rows = [{"input_ids": [0] * n, "length": n} for n in [3, 5, 4] * 30 + [7]]
    stream = BucketedStream(rows, batch_size=8, buffer_size=40, seed=0)
    out = list(stream)
    assert sorted(r["length"] for r in out) == sorted(r["length"] for r in rows)
    batches = [out[i : i + 8] for i in range(0, len(out), 8)]
    mixed = [b for b in batches if len({r["length"] for r in b}) > 1]
    # Each buffer of 40 holds about 13 of each length: at most two mixed batches per buffer.
    assert len(mixed) <= 2 * (len(rows) // 40 + 1)
    assert len(batches[-1]) == len(rows) % 8  # the short batch comes last
    assert [r["length"] for r in BucketedStream(rows, 8, 40, seed=0)] == [
        r["length"] for r in out
    ]
    stream.set_epoch(1)
    assert [r["length"] for r in stream] != [r["length"] for r in out]


def test_streaming_trains_and_refuses_what_it_cannot_do(tmp_path):
    train_file = write(tmp_path / "train.jsonl", sentences(300))
    flags = ["--train_file", str(train_file), "--text_column", "body", "--streaming", "True",
             "--vocab_examples", "100", "--shuffle_buffer_size", "64",
             "--max_eval_examples", "20"]  # fmt: skip
    run = tmp_path / "run"
    assert train(run, *flags) == 0
    recorded = json.loads((run / "eval_validation.json").read_text(encoding="utf-8"))
    assert recorded["metrics"]["num_examples"] == 20
    assert train(tmp_path / "aggressive", *flags, extra=("--objective", "aggressive")) == 1
    assert main(["train", "--output_dir", str(tmp_path / "x"), *flags, *TINY]) == 1


STREAMING_UNDER_A_LIMIT = """
import resource, sys
from vaehub.commands.main import main
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
code = main(["train", "--output_dir", sys.argv[1], "--train_file", sys.argv[2], "--streaming",
             "True", "--vocab_examples", "2000", "--shuffle_buffer_size", "2000",
             "--max_eval_examples", "50", *sys.argv[3:]])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print("grew", after - before)
sys.exit(code)
"""


@pytest.mark.slow
def test_a_corpus_larger_than_the_memory_limit_streams(tmp_path):
    limit = 64 << 20  # bytes the process may grow by while it trains
    corpus = tmp_path / "big.txt"
    block = "".join(s + "\n" for s in sentences(20000))
    with open(corpus, "w", encoding="utf-8") as handle:
        while handle.tell() < 2 * limit:
            handle.write(block)
    # The vocabulary sample, the first shuffle buffers and a few steps: not the whole file.
    completed = run_python(STREAMING_UNDER_A_LIMIT, str(tmp_path / "run"), str(corpus), *TINY,
                           "--max_steps", "10", environment={})  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    grew = int(completed.stdout.split("grew ")[-1].split()[0])
    size = corpus.stat().st_size
    assert grew < limit, f"grew by {grew >> 20} MiB reading a {size >> 20} MiB file"


# --- the papers' corpora by name (§2) ---------------------------------------------------------


def write_paper_corpus(root: Path, name: str, counts=(300, 40, 50)) -> Path:
    """A corpus in the papers' layout: `<root>/<name>_data/<name>.{train,valid,test}.txt`,
    `label<TAB>text` lines except SNLI's."""
    from vaehub.data.papers import PAPER_CORPORA

    corpus = PAPER_CORPORA[name]
    folder = root / corpus.folder
    folder.mkdir(parents=True)
    for seed, (suffix, count) in enumerate(zip(("train", "valid", "test"), counts, strict=True)):
        lines = [
            f"{i % 5}\t{text}" if corpus.labelled else text
            for i, text in enumerate(sentences(count, seed))
        ]
        (folder / f"{corpus.stem}.{suffix}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("name", ["yahoo", "yelp", "short_yelp", "snli"])
def test_a_paper_corpus_loads_by_name_with_its_labels_split_off_and_a_sample_warned(
    tmp_path, name
):
    root = write_paper_corpus(tmp_path / "datasets", name)
    with pytest.warns(UserWarning, match=rf"--dataset {name}: .*train 300 of 100000"):
        corpus = load_corpus(DataArguments(dataset=name, data_dir=str(root)))
    assert {s: len(corpus[s]) for s in corpus} == {"train": 300, "validation": 40, "test": 50}
    first = corpus["train"][0]
    assert first["text"] == sentences(1)[0]  # no label left in the text
    if name != "snli":
        assert first["label"] == "0"
    # The corpus' own folder works as well as the archive's datasets/ folder.
    from vaehub.data.papers import PAPER_CORPORA

    inner = root / PAPER_CORPORA[name].folder
    with pytest.warns(UserWarning):
        assert len(load_corpus(DataArguments(dataset=name, data_dir=str(inner)))["test"]) == 50


def test_a_paper_corpus_trains_and_evaluates_from_its_folder(tmp_path):
    root = write_paper_corpus(tmp_path / "datasets", "yahoo")
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match="--dataset yahoo"):
        assert train(run, "--dataset", "yahoo", "--data_dir", str(root), "--preset", "yahoo") == 0
    recorded = json.loads((run / "eval_test.json").read_text(encoding="utf-8"))
    assert recorded["dataset"]["type"] == "yahoo"
    assert recorded["metrics"]["num_examples"] == 50
    with pytest.warns(UserWarning, match="--dataset yahoo"):
        measured = evaluate(run, "--data", str(root), split="validation")
    assert measured["metrics"]["num_examples"] == 40


def test_the_full_counts_check_the_vocabulary_against_the_published_size(monkeypatch):
    from vaehub.data import papers

    splits = {"train": Dataset.from_dict({"text": sentences(30)}),
              "validation": Dataset.from_dict({"text": sentences(3)}),
              "test": Dataset.from_dict({"text": sentences(3)})}  # fmt: skip
    corpus = papers.PAPER_CORPORA["snli"]
    full = {"train": 30, "validation": 3, "test": 3}
    monkeypatch.setitem(papers.PAPER_CORPORA, "snli", papers.PaperCorpus(
        **{**corpus.__dict__, "counts": full, "vocabulary": 1000}
    ))  # fmt: skip
    with pytest.warns(UserWarning, match=r"has 16 distinct words; the papers .* about 1000"):
        papers.check_paper_corpus("snli", splits)
    monkeypatch.setitem(papers.PAPER_CORPORA, "snli", papers.PaperCorpus(
        **{**corpus.__dict__, "counts": full, "vocabulary": len(WORDS)}
    ))  # fmt: skip
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        papers.check_paper_corpus("snli", splits)


def test_missing_paper_files_say_where_they_come_from_and_a_line_without_label_is_named(
    tmp_path,
):
    with pytest.raises(FileNotFoundError, match=r"yelp\.train\.txt.* not found\. The files come "
                                                r"from .*jxhe/vae-lagging-encoder"):  # fmt: skip
        load_corpus(DataArguments(dataset="yelp", data_dir=str(tmp_path)))
    with pytest.raises(FileNotFoundError, match="bohanli/vae-pretraining-encoder"):
        load_corpus(DataArguments(dataset="snli", data_dir=str(tmp_path)))
    root = write_paper_corpus(tmp_path / "datasets", "short_yelp")
    valid = root / "short_yelp_data" / "short_yelp.valid.txt"
    lines = valid.read_text().splitlines()
    lines[6] = "no label here"
    valid.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"short_yelp\.valid\.txt, line 7: no tab"):
        load_corpus(DataArguments(dataset="short_yelp", data_dir=str(root)))


def test_reproduce_trains_its_rows_on_a_corpus_given_by_name(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    write(folder / "train.jsonl", sentences(100))
    write(folder / "test.jsonl", sentences(15, seed=2))
    output = tmp_path / "tables"
    small = ["--embedding_size", "16", "--decoder_hidden_size", "16", "--use_cpu", "True",
             "--report_to", "none", "--disable_tqdm", "True"]  # fmt: skip
    code = main(["reproduce", "--dataset_name", str(folder), "--text_column", "body",
                 "--validation_split_percentage", "10", "--output-dir", str(output),
                 "--rows", "lstm_lm", "--max-steps", "2", "--iw-samples", "2",
                 "--", *small])  # fmt: skip
    assert code == 0
    table = json.loads((output / "files" / "table.json").read_text(encoding="utf-8"))
    row = table["rows"]["lstm_lm"]
    assert f"--dataset_name {folder}" in row["command"] and "--text_column body" in row["command"]
    assert (row["seeds"]["0"]["split"], row["seeds"]["0"]["num_examples"]) == ("test", 15)
    validation = json.loads(
        (output / "files" / "lstm_lm" / "seed-0" / "eval_validation.json").read_text("utf-8")
    )
    assert validation["metrics"]["num_examples"] == 10  # 10% of the 100 cut from train
    assert main(["reproduce", "--dataset", "ptb", "--dataset_name", str(folder)]) == 1
