# serialproxy API reference, built by "tox -e api-ref".

extensions = [
    'os_api_ref',
    'openstackdocstheme',
]

html_theme = 'openstackdocs'
html_theme_options = {'sidebar_mode': 'toc'}

# openstackdocstheme
openstackdocs_repo_name = 'openstack/serialproxy'
openstackdocs_use_storyboard = False
openstackdocs_auto_name = False

project = 'serialproxy API Reference'
copyright = 'serialproxy developers'
master_doc = 'index'
source_suffix = '.rst'
pygments_style = 'native'
exclude_patterns = []
