"""Sphinx configuration: a MyST Markdown site in the layout of the Stable-Baselines3 projects' documentation."""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document the checkout, not an installed copy
os.environ.setdefault("MUJOCO_GL", "egl")  # importing sb3_sacae must never need a display

project = "sb3-sacae"
author = "sb3-sacae contributors"
copyright = "sb3-sacae contributors"
release = (ROOT / "sb3_sacae" / "version.txt").read_text(encoding="utf-8").strip()
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx_autodoc_typehints",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
master_doc = "index"
language = "en"
# _generated/ holds pages written by benchmarks/report.py, included by results.md, performance.md, modules/sacae.md
# and guide/replay_memory.md: not pages of their own
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"show-inheritance": True}
typehints_fully_qualified = False
always_document_param_types = False
autosummary_generate = False

nitpicky = False

html_theme = "furo"
html_title = f"sb3-sacae {release}"


def escape_bars(app, what, name, obj, options, lines):
    """Docstrings write cardinalities and norms as ``|A|``, which reStructuredText reads as a substitution reference.

    The package's docstrings define no substitutions, so every ``|word|`` is shown literally.
    """
    lines[:] = [
        "".join(escape_outside_literals(part, i) for i, part in enumerate(re.split(r"(``.*?``)", line))) for line in lines
    ]


def escape_outside_literals(part, index):
    """Odd parts of the split are inline literals, shown as written; bars elsewhere are escaped."""
    return part if index % 2 else re.sub(r"(?<![\\`])\|([^|\s`][^|`]*?)\|", r"\\|\1\\|", part)


def setup(app):
    app.connect("autodoc-process-docstring", escape_bars)
