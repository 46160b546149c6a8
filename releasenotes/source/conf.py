"""Sphinx settings of serialproxy's release notes (tox -e releasenotes)."""

extensions = ['reno.sphinxext']

project = 'serialproxy Release Notes'
copyright = '2026, serialproxy contributors'
# Release notes are not versioned documents: reno reads the versions from
# the git history.
version = ''
release = ''
master_doc = 'index'
source_suffix = '.rst'
exclude_patterns = []
pygments_style = 'sphinx'
html_theme = 'alabaster'
html_static_path = ['_static']
templates_path = ['_templates']
