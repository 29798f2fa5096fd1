"""The web UI's routes, one module per group. A group is a module with
``add_routes(app, ui)`` (``ui``: webui.context.UI); to add one, write the module and list
it in GROUPS. Routes stay thin: rules live in the guard, documents in webui.payload."""

from __future__ import annotations

from vzdivert.webui.routes import live, pages, prometheus, session, settings

GROUPS = (pages, session, live, settings, prometheus)
