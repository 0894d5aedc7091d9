"""The full profile's text: a local corpus cut into windows by a hub checkpoint's own tokenizer.

A corpus (`data.text_sources.text_source`: text files, or a dataset saved by `save_to_disk`)
is split train/test by position as the ci corpora are; each document is tokenized on its own and
followed by the tokenizer's end-of-text token, the documents of a split are concatenated, and the
tokens are cut into windows of `context`. At most `test_windows` test windows are kept (the first).
The id names all of these, so `load_local_text_by_id` rebuilds the windows from it.
"""

from __future__ import annotations

import re

import numpy as np

from pairzoo.data.hub_cache import load_tokenizer
from pairzoo.data.preprocessing import Preprocessing
from pairzoo.data.sets import DatasetInfo
from pairzoo.data.text import Corpus, TextData
from pairzoo.data.text_sources import TEXT_SUFFIXES, text_source
from pairzoo.errors import PairzooError
from pairzoo.paths import path_problem
from pairzoo.profiles import data_dir

# folder-<name> or saved-<name>[<split>:<column>], then -tok-<hub id, / as -->-ctx<T>-test<N>
ID_PATTERN = re.compile(
    r"^(?:folder|saved)-(?P<name>[^/\[\]]+?)(?:\[(?:(?P<split>[^\]:]+):)?(?P<column>[^\]]+)\])?"
    r"-tok-(?P<model>.+)-ctx(?P<context>\d+)-test(?P<test>\d+)$"
)
LAYOUT = f"text files ({', '.join(TEXT_SUFFIXES)}), or a dataset saved by datasets.save_to_disk"


def tokenized_windows(tokenizer, documents: list[str], context: int) -> np.ndarray:
    """The documents' tokens, each document followed by end-of-text, in windows of `context`."""
    end = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    ids = [t for tokens in tokenizer(documents, add_special_tokens=False)["input_ids"]
           for t in (*tokens, *end)]  # fmt: skip
    count = len(ids) // context
    return np.asarray(ids[: count * context], dtype=np.int64).reshape(count, context)


def hub_text(corpus: Corpus, tokenizer, model_id: str, context: int, test_windows: int) -> TextData:
    """A local corpus's training and test windows under the tokenizer of hub model `model_id`."""
    train = tokenized_windows(tokenizer, list(corpus.split("train").values()), context)
    test = tokenized_windows(tokenizer, list(corpus.split("test").values()), context)
    test = test[:test_windows]
    for split, found in (("train", train), ("test", test)):
        if not len(found):
            raise PairzooError(f"{corpus.source}: {split} documents fill no window of {context}")
    every = corpus.test_every
    end = "its end-of-text token" if tokenizer.eos_token_id is not None else "nothing"
    info = DatasetInfo(
        id=f"{corpus.id}-tok-{model_id.replace('/', '--')}-ctx{context}-test{test_windows}",
        name=f"{corpus.name}, tokenized by {model_id}, windows of {context} tokens",
        source=f"local copy: {corpus.source}",
        citation="see the source",
        licence="that of the local copy (see the source); pairzoo does not redistribute it",
        preprocessing=Preprocessing(
            f"each document encoded by the tokenizer of {model_id} (without special tokens) and "
            f"followed by {end}; a split's documents concatenated and cut into consecutive windows "
            f"of {context} ids",
            f"int64 token ids (windows, {context})",
        ),
        splits={
            "train": f"documents in sorted order except every {every}th, tokenized, "
            f"non-overlapping windows of {context} tokens (the rest dropped)",
            "test": f"every {every}th document (sorted order, from the {every}th), same windows, "
            f"the first {test_windows} at most",
        },
    )
    return TextData(train, test, info, len(tokenizer))


def load_local_text(
    name: str,
    tokenizer,
    model_id: str,
    context: int,
    test_windows: int,
    column: str = "text",
    split: str = "train",
) -> TextData:
    """The windows of $PAIRZOO_DATA/<name> (`text_source`) under the tokenizer of `model_id`."""
    corpus = text_source(data_dir(name, LAYOUT), column, split)
    return hub_text(corpus, tokenizer, model_id, context, test_windows)


def load_local_text_by_id(dataset: str) -> TextData:
    """The windows of an id that `hub_text` made, rebuilt from $PAIRZOO_DATA and the hub cache."""
    match = ID_PATTERN.match(dataset)
    problem = path_problem(match["name"]) if match else "is not a local text id"
    if match is None or problem:
        raise PairzooError(f"dataset {dataset!r} refused: it {problem}")
    model_id = match["model"].replace("--", "/")
    column, split = match["column"] or "text", match["split"] or "train"
    data = load_local_text(
        match["name"], load_tokenizer(model_id), model_id, int(match["context"]),
        int(match["test"]), column, split,
    )  # fmt: skip
    if data.info.id != dataset:
        raise PairzooError(f"$PAIRZOO_DATA/{match['name']} makes {data.info.id}, not {dataset}")
    return data
