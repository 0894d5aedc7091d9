"""The lineage of a manifest's models: a graph, and a figure with a layered panel per recipe."""

from __future__ import annotations

import re
import textwrap
from statistics import mean

import matplotlib.pyplot as plt
import networkx as nx
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.textpath import TextPath

from pairzoo.record.declarations import relations as described

# Sizes in points (text) and inches (layout); the figure is the page's width at 100 dpi.
LABEL_PT, TITLE_PT, LEGEND_PT = 8.5, 9.5, 8.0
WIDTH = 7.5
GAP_X, GAP_Y, GAP_COMPONENTS, MARGIN, PAD = 0.1, 0.3, 0.4, 0.12, 0.05

Size = tuple[float, float]
Box = tuple[float, float, float, float]  # centre x, centre y, width, height


def lineage(entries: dict) -> nx.DiGraph:
    """Models as nodes, pairs as edges (base → updated) labelled with their relation."""
    graph = nx.DiGraph()
    for model_id, record in entries["models"].items():
        graph.add_node(model_id, recipe=record["recipe"])
    for pair_id, pair in entries["pairs"].items():
        graph.add_edge(pair["base"], pair["updated"], relation=pair["relation"], pair=pair_id)
    return graph


def _natural(name: str) -> list:
    """A sort key that puts epochs-2 before epochs-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def label(model_id: str) -> str:
    """A model's name without its recipe; past 10 characters, two lines split at a hyphen."""
    name = model_id.split("/", 1)[-1]
    cuts = [m.end() for m in re.finditer("-", name[:-1])]
    if len(name) <= 10 or not cuts:
        return name
    cut = min(cuts, key=lambda i: max(i, len(name) - i))
    return f"{name[:cut]}\n{name[cut:]}"


def _size(text: str) -> Size:
    """Width and height in inches of a label's box."""
    font = FontProperties(size=LABEL_PT)
    lines = text.split("\n")
    width = max(TextPath((0, 0), line, prop=font).get_extents().width for line in lines)
    return width / 72 + 2 * PAD, len(lines) * 1.25 * LABEL_PT / 72 + 2 * PAD


def _layered(graph: nx.DiGraph) -> tuple[dict[str, Box], Size]:
    """Boxes of one component, roots on top, each child below its parents; and its size.

    The boxes of a layer share its height, so that edges between layers cross no box.
    """
    sizes = {n: _size(label(n)) for n in graph}
    x: dict[str, float] = {}
    boxes: dict[str, Box] = {}
    top = 0.0
    for layer in nx.topological_generations(graph):
        wanted = {n: mean([x[p] for p in graph.predecessors(n)] or [0.0]) for n in layer}
        right = float("-inf")
        for node in sorted(layer, key=lambda n: (wanted[n], _natural(n))):
            left = max(wanted[node] - sizes[node][0] / 2, right + GAP_X)
            x[node], right = left + sizes[node][0] / 2, left + sizes[node][0]
        shift = mean(wanted[n] - x[n] for n in layer)
        height = max(sizes[n][1] for n in layer)
        for node in layer:
            x[node] += shift
            boxes[node] = (x[node], top + height / 2, sizes[node][0], height)
        top += height + GAP_Y
    left = min(x - w / 2 for x, _, w, _ in boxes.values())
    right = max(x + w / 2 for x, _, w, _ in boxes.values())
    return {n: (x - left, y, w, h) for n, (x, y, w, h) in boxes.items()}, (
        right - left,
        top - GAP_Y,
    )


def _rows(widths: list[float], width: float, gap: float) -> list[list[int]]:
    """Indices of items in rows at most `width` wide, each item in the first row with room."""
    rows: list[list[int]] = []
    ends: list[float] = []
    for i, w in enumerate(widths):
        row = next((r for r, end in enumerate(ends) if end + gap + w <= width), len(rows))
        if row == len(rows):
            rows.append([])
            ends.append(-gap)
        rows[row].append(i)
        ends[row] += gap + w
    return rows


def _panel(graph: nx.DiGraph, width: float) -> tuple[dict[str, Box], Size]:
    """Boxes of one recipe's models, each component laid out apart; and the panel's size."""
    parts = sorted(nx.weakly_connected_components(graph), key=lambda c: (-len(c), min(c)))
    layouts = [_layered(graph.subgraph(part)) for part in parts]
    top = MARGIN + 1.6 * TITLE_PT / 72
    boxes, used = {}, 0.0
    for row in _rows([size[0] for _, size in layouts], width, GAP_COMPONENTS):
        left = MARGIN
        for layout, (w, _) in (layouts[i] for i in row):
            boxes |= {n: (left + x, top + y, bw, bh) for n, (x, y, bw, bh) in layout.items()}
            left += w + GAP_COMPONENTS
        used = max(used, left - GAP_COMPONENTS + MARGIN)
        top += max(layouts[i][1][1] for i in row) + GAP_COMPONENTS
    return boxes, (used, top - GAP_COMPONENTS + MARGIN)


def _draw(ax: Axes, graph: nx.DiGraph, boxes: dict[str, Box], colours: dict) -> None:
    """Edges from the bottom of a base's box to the top of its updated model's, then the boxes."""
    for base, updated, data in graph.edges(data=True):
        (x0, y0, _, h0), (x1, y1, _, h1) = boxes[base], boxes[updated]
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0 + h0 / 2),
                (x1, y1 - h1 / 2),
                arrowstyle="-|>",
                mutation_scale=9,
                lw=1.3,
                color=colours[data["relation"]],
                shrinkA=0,
                shrinkB=0,
            )
        )
    for node, (x, y, w, h) in boxes.items():
        ax.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - h / 2),
                w,
                h,
                boxstyle="round,pad=0,rounding_size=0.04",
                fc="#f2f2f2",
                ec="#666666",
                lw=0.8,
            )
        )
        ax.text(x, y, label(node), ha="center", va="center", fontsize=LABEL_PT, linespacing=1.1)


def lineage_figure(entries: dict) -> Figure:
    """The lineage graph, a panel per recipe: roots on top, shared bases and chains visible."""
    graph = lineage(entries)
    relations = sorted({data["relation"] for *_, data in graph.edges(data=True)})
    colours = {r: plt.cm.tab20(i % 20) for i, r in enumerate(relations)}
    recipes = sorted({recipe for _, recipe in graph.nodes(data="recipe")})
    panels = [
        _panel(
            graph.subgraph(n for n, r in graph.nodes(data="recipe") if r == recipe),
            WIDTH - 2 * MARGIN,
        )
        for recipe in recipes
    ]
    width = max([WIDTH] + [w for _, (w, _) in panels])
    rows = _rows([w for _, (w, _) in panels], width, GAP_Y)
    heights = [max(panels[i][1][1] for i in row) for row in rows]
    descriptions = described(entries)
    legend = [textwrap.fill(f"{r}: {descriptions[r]}", 100) for r in relations]
    lines = sum(text.count("\n") + 1 for text in legend)
    total = max(1.0, sum(heights) + GAP_Y * len(rows) + lines * 1.45 * LEGEND_PT / 72)
    fig = plt.figure(figsize=(width, total))
    top = 0.0
    for row, h in zip(rows, heights, strict=True):
        extra = (width - sum(panels[i][1][0] + GAP_Y for i in row) + GAP_Y) / len(row)
        left = 0.0
        for i in row:
            boxes, w = panels[i][0], panels[i][1][0] + extra
            ax = fig.add_axes((left / width, 1 - (top + h) / total, w / width, h / total))
            ax.set(xlim=(0, w), ylim=(h, 0), xticks=[], yticks=[])
            for spine in ax.spines.values():
                spine.set_color("#bbbbbb")
            ax.text(MARGIN, MARGIN, recipes[i], va="top", fontsize=TITLE_PT, fontweight="bold")
            shifted = {n: (x + extra / 2, *rest) for n, (x, *rest) in boxes.items()}
            _draw(ax, graph.subgraph(boxes), shifted, colours)
            left += w + GAP_Y
        top += h + GAP_Y
    handles = [Line2D([], [], color=colours[r], lw=1.5) for r in relations]
    if handles:
        fig.legend(
            handles,
            legend,
            loc="lower left",
            bbox_to_anchor=(0, 0),
            fontsize=LEGEND_PT,
            frameon=False,
            borderaxespad=0,
            handlelength=1.5,
        )
    return fig
