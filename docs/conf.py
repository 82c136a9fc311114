"""Sphinx configuration of rkm's documentation site (``make docs`` builds it into ``site/``).

Why Sphinx: docs/about-these-docs.md. The build is strict (``-W --keep-going -n``): a warning,
a broken cross-reference or a broken internal link fails it. It downloads nothing: no
intersphinx, the tutorials read only the datasets rkm ships or generates.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import rkm  # noqa: E402

project = "rkm"
author = "the rkm developers"
copyright = "the rkm developers"  # noqa: A001 (Sphinx's name)
version = release = rkm.__version__

extensions = [
    "myst_nb",                 # MyST Markdown pages and MyST-NB text notebooks (the tutorials)
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax 3.2.2 copied into the site: no CDN, math renders offline
    "numpydoc",
    "apipages",                # docs/_ext/apipages.py: one API page per public module, from __all__
]

root_doc = "index"
# Blocks without a language are output or plain text (printed lines, file trees): not Python.
highlight_language = "none"
exclude_patterns = ["_build", "_ext", "**/.ipynb_checkpoints", "jupyter_execute"]
source_suffix = {".md": "myst-nb", ".rst": "restructuredtext"}

# -- strictness ---------------------------------------------------------------------------
nitpicky = True
# Types of other libraries cannot be linked without intersphinx, which would download their
# inventories at build time; every reference into rkm itself must resolve.
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|numpy|np|scipy|matplotlib|sklearn|dask|distributed|networkx|safetensors|pathlib|"
               r"os|io|logging|collections|concurrent|contextlib|numbers|inspect|typing|array|Path|Tensor|ndarray|Figure|Axes|Module)(\..*)?"),
    # Internal modules and names (a part starting with an underscore) are not in the reference
    # by design: a docstring may name them, and they render as code.
    # Sphinx splits a dataclass field's default-factory signature (``dict[str, str] = <factory>``)
    # at the comma; the built-in type it names has no page to link to anyway.
    (r"py:class", r"dict\[str"),
    # Private type variables of signatures (``rkm.plotstyle.styled``'s ParamSpec ``_P``).
    (r"py:class", r"_[A-Z]\w*"),
    (r"py:.*", r"rkm(\.\w+)*\._\w+(\..*)?"),
    (r"py:.*", r"(array-like|array_like|optional|callable|iterable|sequence|mapping|path-like|file-like)"),
]
suppress_warnings: list[str] = []

# -- MyST and MyST-NB ---------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "attrs_inline", "attrs_block"]
myst_heading_anchors = 3
nb_execution_mode = os.environ.get("RKM_DOCS_EXECUTE", "force")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_in_temp = True     # the tutorials write save points and figures where they run
nb_execution_show_tb = True
# One torch thread per tutorial kernel unless the caller chose: the kernels inherit this
# process's environment, and two threads on two busy cores made tutorial 1 take 282 s in a
# build, one thread 40 s (2026-12-07, the shared 2-core development machine).
os.environ.setdefault("OMP_NUM_THREADS", "1")
nb_merge_streams = True

# -- autodoc and numpydoc -----------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- HTML -----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"rkm {release}"
html_static_path = ["_static"]
html_css_files = ["rkm.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "install": [], "pyrkm": [], "changelog": [], "citing": [], "license": []}
