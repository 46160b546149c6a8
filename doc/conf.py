"""Sphinx settings of serialproxy's guides (tox -e docs).

The guides stay where README.rst and the code point at them, doc/*.rst;
doc/index.rst gathers them. Warnings are errors (sphinx-build -W).
"""

project = 'serialproxy'
copyright = '2026, serialproxy contributors'
master_doc = 'index'
source_suffix = '.rst'
# The deployment files and notification samples are included by the
# guides, not pages of their own; build/ is Sphinx's own output.
exclude_patterns = ['build', 'deployment', 'notifications',
                    'requirements.txt']
pygments_style = 'sphinx'
html_theme = 'alabaster'
html_title = 'serialproxy'
