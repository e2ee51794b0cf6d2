"""Admin API (``/admin/api/``), admin page (``/admin/``) and their session/auth helpers.

Wired by ``proxy.admin.setup.setup_admin(app)``; see the README section "Admin API, page and
metrics" for the authentication and CSRF design.
"""
