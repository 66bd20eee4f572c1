"""Entry points: the WSGI app factory, the ``ambassador`` CLI, and the background job functions.

The only package that sees every other one.
"""
