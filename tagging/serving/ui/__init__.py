"""The web page served by ``tagging serve`` at ``/ui/``: catalog, video and user pages.

Server-rendered HTML from packaged Jinja2 templates, inline SVG charts and one small
script, all shipped in this package: the page loads nothing from the internet.

    >>> from tagging.serving.ui import add_ui
    >>> add_ui(app, service)   # done by tagging.serving.server.create_app
"""

from __future__ import annotations

from tagging.serving.ui.routes import add_ui

__all__ = ["add_ui"]
