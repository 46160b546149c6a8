"""The Content-Security-Policy and other headers of every page file.

The page may talk only to its own proxy; the dashboards that may frame
it are [console] frame_ancestors (frame_ancestors.py).
"""

_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self' ws: wss:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:")


def security_headers(frame_ancestors):
    """Headers of every file answered; framing as [console] allows it."""
    return [('X-Content-Type-Options', 'nosniff'),
            ('Referrer-Policy', 'no-referrer'),
            ('Content-Security-Policy', '%s; %s' % (
                _CONTENT_SECURITY_POLICY, frame_ancestors.directive))]
