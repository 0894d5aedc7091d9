import itertools

import networkx as nx
import numpy as np

from pairzoo.views.lineage import WIDTH, _panel, label, lineage, lineage_figure

EDGES = {
    "autoencoder_lstm": [("ae-base", f"ae-epochs-{k}") for k in (1, 2, 4, 8)]
    + [("ae-base", "ae-chain-1"), ("ae-chain-1", "ae-chain-2"), ("ae-base", "ae-more-data")]
    + [("lstm-base", "lstm-add-class"), ("lstm-base", "lstm-more-data")],
    "federated_rounds": [("uplink-global-2", f"uplink-round-3-client-{k}") for k in range(4)],
}


def _entries() -> dict:
    models, pairs = {}, {}
    for recipe, edges in EDGES.items():
        for base, updated in edges:
            models[f"{recipe}/{base}"] = models[f"{recipe}/{updated}"] = {"recipe": recipe}
            pairs[f"{recipe}/{base}..{updated}"] = {
                "base": f"{recipe}/{base}",
                "updated": f"{recipe}/{updated}",
                "relation": "more-epochs",
            }
    return {"models": models, "pairs": pairs}


def _inside(point, box, margin=1e-3) -> bool:
    x, y, w, h = box
    return abs(point[0] - x) < w / 2 - margin and abs(point[1] - y) < h / 2 - margin


def test_layers_put_children_below_and_edges_cross_no_box():
    graph = lineage(_entries())
    for recipe in EDGES:
        sub = graph.subgraph(n for n in graph if n.startswith(f"{recipe}/"))
        boxes, (width, _) = _panel(sub, WIDTH)
        assert width <= WIDTH
        for a, b in itertools.combinations(boxes.values(), 2):
            assert abs(a[0] - b[0]) >= (a[2] + b[2]) / 2 or abs(a[1] - b[1]) >= (a[3] + b[3]) / 2
        for base, updated in sub.edges:
            (x0, y0, _, h0), (x1, y1, _, h1) = boxes[base], boxes[updated]
            assert y1 - h1 / 2 > y0 + h0 / 2  # the updated model's box below its base's
            for t in np.linspace(0.0, 1.0, 200):
                point = (x0 + t * (x1 - x0), y0 + h0 / 2 + t * (y1 - h1 / 2 - y0 - h0 / 2))
                assert not any(_inside(point, box) for box in boxes.values())
        spans = [
            (min(boxes[n][0] - boxes[n][2] / 2 for n in part),
             max(boxes[n][0] + boxes[n][2] / 2 for n in part),
             min(boxes[n][1] - boxes[n][3] / 2 for n in part),
             max(boxes[n][1] + boxes[n][3] / 2 for n in part))
            for part in nx.weakly_connected_components(sub)
        ]  # fmt: skip
        for a, b in itertools.combinations(spans, 2):  # components apart, not interleaved
            assert a[1] < b[0] or b[1] < a[0] or a[3] < b[2] or b[3] < a[2]


def test_figure_has_a_panel_per_recipe_with_legible_labels():
    fig = lineage_figure(_entries())
    titles = [ax.texts[0].get_text() for ax in fig.axes]
    assert titles == sorted(EDGES)
    assert fig.get_figwidth() == WIDTH
    texts = [text for ax in fig.axes for text in ax.texts] + fig.legends[0].get_texts()
    assert min(text.get_fontsize() for text in texts) >= 8
    assert "uplink-round-\n3-client-0" in {text.get_text() for text in fig.axes[1].texts}


def test_labels_break_long_names_at_a_balanced_hyphen():
    assert label("retraining/epochs-1") == "epochs-1"
    assert label("language_model/lora-16-merged") == "lora-16-\nmerged"
    assert label("federated_rounds/round-3-client-0") == "round-3-\nclient-0"
