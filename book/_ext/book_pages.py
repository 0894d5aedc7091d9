"""Sphinx hooks of the book: a recipe's executed .ipynb to download, figures' alt text."""

from pathlib import Path

import jupytext
import nbformat
from docutils import nodes
from jupyter_cache import get_cache
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform


class FigureAltFromCaption(SphinxPostTransform):
    """Give each image of a captioned figure that has no alt text its caption as alt text."""

    default_priority = 900  # after MyST-NB has chosen each output's image

    def run(self, **kwargs: object) -> None:
        """Set the alt text of images in figures from the figure's caption."""
        for figure in self.document.findall(nodes.figure):
            caption = next(iter(figure.findall(nodes.caption)), None)
            if caption is None:
                continue
            for image in figure.findall(nodes.image):
                image.setdefault("alt", caption.astext())


def executed_notebook(app: Sphinx, pagename: str) -> nbformat.NotebookNode | None:
    """The page's notebook with the outputs of its execution, from the execution cache."""
    source = Path(app.env.doc2path(pagename))
    reader = app.config.nb_custom_formats.get(source.suffix)
    if reader is None or not app.config.nb_execution_cache_path:
        return None
    notebook = jupytext.read(source, fmt=reader[1]["fmt"])
    try:
        cache = get_cache(Path(app.srcdir, app.config.nb_execution_cache_path))
        _, merged = cache.merge_match_into_notebook(notebook)
    except KeyError:  # not executed into the cache (execution off or failed)
        return None
    return merged


def offer_executed_notebook(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    """Offer a text notebook's executed .ipynb for download beside its source."""
    if "kernelspec" not in app.env.metadata.get(pagename, {}) or context.get("ipynb_source"):
        return
    notebook = executed_notebook(app, pagename)
    if notebook is None:
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app: Sphinx) -> dict:
    """Register the hooks; the theme's header buttons (priority 501) read ipynb_source."""
    app.add_post_transform(FigureAltFromCaption)
    app.connect("html-page-context", offer_executed_notebook, priority=500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
