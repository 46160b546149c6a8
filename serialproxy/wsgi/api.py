"""serialproxy-api for a WSGI server: module = serialproxy.wsgi.api.

Importing this module builds the application (config, logging, RPC, the
pipeline): a uwsgi with lazy-apps = true imports it in each worker after
the fork. See serialproxy.api.wsgi_app.
"""

from serialproxy.api import wsgi_app

application = wsgi_app.init_application()
