"""Sphinx hooks of the book: a recipe's executed .ipynb to download, figures' alt text."""

import shutil
from pathlib import Path

from docutils import nodes
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


def offer_executed_notebook(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object
) -> None:
    """Offer a notebook page's executed .ipynb for download, whatever its text format."""
    if "kernelspec" not in app.env.metadata.get(pagename, {}) or context.get("ipynb_source"):
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app: Sphinx) -> dict:
    """Register the hooks; the theme's header buttons (priority 501) read ipynb_source."""
    app.add_post_transform(FigureAltFromCaption)
    app.connect("html-page-context", offer_executed_notebook, priority=500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
