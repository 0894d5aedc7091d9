"""The full profile's local loaders on fabricated miniatures: a hub cache and a text folder."""

import pytest

from pairzoo.data.hub_cache import hub_snapshot
from pairzoo.data.text import train_tokenizer
from pairzoo.data.text_sources import text_folder
from pairzoo.errors import PairzooError
from pairzoo.hf_env import transformers
from pairzoo.models.hub_checkpoints import load_causal_lm, load_image_classifier
from pairzoo.models.vision_transformers import digits_vit
from pairzoo.steps import language_models as lm

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _cache_model(cache, repo_id, save):
    """Write a model into the hub cache's layout: refs/main naming a snapshot folder."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    save(repo / "snapshots" / COMMIT)


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("hub")
    tiny = lm.LMConfig(300, 32, 64, 1, 2, 16).build(0)

    def save_lm(folder):
        tiny.save_pretrained(folder)
        tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=train_tokenizer(300))
        tokenizer.save_pretrained(folder)

    _cache_model(cache, "tiny/llama", save_lm)
    vit = digits_vit(3, 1)
    _cache_model(cache, "tiny/vit", lambda folder: vit.save_pretrained(folder))
    return cache, tiny


def test_a_causal_lm_and_its_tokenizer_load_from_the_cache(hub_cache):
    cache, tiny = hub_cache
    model, tokenizer = load_causal_lm("tiny/llama", cache)
    assert type(model).__name__ == "LlamaForCausalLM"
    saved, loaded = lm.model_tensors(tiny), lm.model_tensors(model)
    assert saved.keys() == loaded.keys() and all(saved[k].equal(loaded[k]) for k in saved)
    text = "def f(x):\n    return x"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_a_vit_loads_from_the_cache(hub_cache):
    cache, _ = hub_cache
    model = load_image_classifier("tiny/vit", cache)
    assert model.config.num_labels == 3 and model.config.image_size == 8


def test_a_missing_model_names_itself_and_the_cache(hub_cache):
    cache, _ = hub_cache
    with pytest.raises(PairzooError, match=r"'EleutherAI/pythia-160m'.*models--EleutherAI--pythia"):
        hub_snapshot("EleutherAI/pythia-160m", cache)


def test_a_text_folder_is_a_corpus_split_by_position(tmp_path):
    for index in range(7):
        (tmp_path / "docs" / f"{index}.txt").parent.mkdir(exist_ok=True)
        (tmp_path / "docs" / f"{index}.txt").write_text(f"document {index}\n")
    (tmp_path / "docs" / "image.png").write_bytes(b"\x89PNG")
    corpus = text_folder(tmp_path / "docs")
    assert list(corpus.documents) == [f"{i}.txt" for i in range(7)]
    assert list(corpus.split("test")) == ["4.txt"]
    with pytest.raises(PairzooError, match="not found"):
        text_folder(tmp_path / "absent")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(PairzooError, match="no text files"):
        text_folder(tmp_path / "images")
