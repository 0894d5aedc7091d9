"""Text that ships with Python, a byte-level BPE tokenizer trained on it, and token windows.

Two domains: English prose (the help topics of the Python documentation, `pydoc_data.topics`)
and Python source code (a fixed list of standard-library modules). Both come with every Python
under the PSF licence, so the ci profile needs no download. Each domain is a list of documents
split train/test by position; the tokenizer is trained on both training splits, and a split
becomes non-overlapping windows of `context` tokens. A dataset id names corpus, vocabulary and
context (`pydoc-topics-bpe512-ctx64`), so `load_text` rebuilds the same windows from the id.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from pairzoo.data.preprocessing import Preprocessing
from pairzoo.data.sets import DatasetInfo
from pairzoo.errors import PairzooError

PYTHON = f"Python {sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
PSF = "PSF-2.0 (Python Software Foundation License Version 2)"
TEST_EVERY = {"pydoc-topics": 5, "python-stdlib-source": 6}  # every n-th document is test
STDLIB_MODULES = (
    "calendar", "contextlib", "fractions", "functools", "glob", "heapq", "pprint", "queue",
    "random", "shlex", "string", "textwrap",
)  # fmt: skip
SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Corpus:
    """A domain's documents by name, in a fixed order, and what they are."""

    id: str
    name: str
    source: str
    documents: dict[str, str]
    test_every: int = 5

    def split(self, which: str) -> dict[str, str]:
        """The training or test documents: every n-th document (by sorted name) is a test one."""
        every = self.test_every
        names = sorted(self.documents)
        chosen = [n for i, n in enumerate(names) if (i % every == every - 1) == (which == "test")]
        return {n: self.documents[n] for n in chosen}

    def text(self, which: str) -> str:
        """A split's documents joined by a blank line."""
        return SEPARATOR.join(self.split(which).values())


@cache
def pydoc_topics() -> Corpus:
    """The Python documentation's help topics (English prose with some code), one per topic."""
    from pydoc_data.topics import topics

    return Corpus(
        "pydoc-topics",
        "Python documentation help topics (pydoc_data.topics)",
        f"shipped with {PYTHON} as pydoc_data.topics (generated from the Python documentation)",
        dict(sorted(topics.items())),
        TEST_EVERY["pydoc-topics"],
    )


@cache
def stdlib_source() -> Corpus:
    """Python source code: a fixed list of pure-Python standard-library modules."""
    folder = Path(sysconfig.get_paths()["stdlib"])
    documents = {}
    for module in STDLIB_MODULES:
        path = folder / f"{module}.py"
        if not path.is_file():
            raise PairzooError(f"standard-library module source {path} not found")
        documents[module] = path.read_text("utf-8")
    return Corpus(
        "python-stdlib-source",
        "Python standard-library source code",
        f"shipped with {PYTHON}: {', '.join(f'{m}.py' for m in STDLIB_MODULES)}",
        documents,
        TEST_EVERY["python-stdlib-source"],
    )


CORPORA = {"pydoc-topics": pydoc_topics, "python-stdlib-source": stdlib_source}


@cache
def train_tokenizer(vocab_size: int) -> Tokenizer:
    """Byte-level BPE with `vocab_size` tokens, trained on both domains' training splits.

    Byte-level: every string encodes, and decoding gives it back exactly. Deterministic.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [corpus().text("train") for corpus in CORPORA.values()]
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


@dataclass(frozen=True)
class TextData:
    """A domain's token windows: int64 arrays (windows × context), the test split as `x_test`.

    Shaped like `ImageData` where the writer and the evaluator need it: no classes,
    one input is a window of token ids.
    """

    x_train: np.ndarray
    x_test: np.ndarray
    info: DatasetInfo
    vocab_size: int
    classes: tuple[str, ...] = ()

    @property
    def y_test(self) -> np.ndarray:
        """The targets of the test windows: their own tokens (each predicts the next)."""
        return self.x_test

    @property
    def sizes(self) -> dict[str, int]:
        """Number of windows per split."""
        return {"train": len(self.x_train), "test": len(self.x_test)}

    @property
    def input_shape(self) -> tuple[int]:
        """Shape of one input: a window of token ids."""
        return (self.x_train.shape[1],)


def dataset_id(corpus: str, vocab_size: int, context: int) -> str:
    """The id of a corpus tokenized with a vocabulary and cut into windows."""
    return f"{corpus}-bpe{vocab_size}-ctx{context}"


ID_PATTERN = re.compile(r"^(?P<corpus>.+)-bpe(?P<vocab>\d+)-ctx(?P<context>\d+)$")


def windows(tokenizer: Tokenizer, text: str, context: int) -> np.ndarray:
    """`text` tokenized and cut into consecutive windows of `context` tokens (rest dropped)."""
    ids = np.asarray(tokenizer.encode(text).ids, dtype=np.int64)
    count = len(ids) // context
    return ids[: count * context].reshape(count, context)


def load_text(corpus: str, vocab_size: int, context: int) -> TextData:
    """A corpus's training and test windows under the tokenizer of `vocab_size`."""
    if corpus not in CORPORA:
        raise PairzooError(f"unknown corpus {corpus!r}: choose one of {sorted(CORPORA)}")
    found = CORPORA[corpus]()
    tokenizer = train_tokenizer(vocab_size)
    train, test = (windows(tokenizer, found.text(s), context) for s in ("train", "test"))
    every = found.test_every
    info = DatasetInfo(
        id=dataset_id(corpus, vocab_size, context),
        name=f"{found.name}, byte-level BPE ({vocab_size} tokens), windows of {context} tokens",
        source=found.source,
        citation="Python Software Foundation. The Python Language Reference and Library, "
        f"{PYTHON}. https://docs.python.org/",
        licence=PSF,
        preprocessing=Preprocessing(
            f"a split's documents joined by a blank line, encoded by the byte-level BPE tokenizer "
            f"of {vocab_size} tokens trained on both corpora's training splits (the language_model "
            f"recipe ships it as files.tokenizer), cut into consecutive windows of {context} ids",
            f"int64 token ids (windows, {context})",
        ),
        splits={
            "train": f"documents in sorted order except every {every}th, joined by a blank line, "
            f"tokenized, non-overlapping windows of {context} tokens (the rest dropped)",
            "test": f"every {every}th document (sorted order, from the {every}th), same windows",
        },
    )
    return TextData(train, test, info, vocab_size)


def load_text_by_id(dataset: str) -> TextData:
    """The windows of a dataset id made by `dataset_id`, rebuilt from the shipped text."""
    match = ID_PATTERN.match(dataset)
    if match is None or match["corpus"] not in CORPORA:
        raise PairzooError(f"{dataset!r} is not a text dataset id (<corpus>-bpe<V>-ctx<T>)")
    return load_text(match["corpus"], int(match["vocab"]), int(match["context"]))
