"""WSGI entry points: modules whose import builds an application."""
