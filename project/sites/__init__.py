"""Branded site sub-applications, one package per site.

Each holds templates (``jinja2/<name>/``), static files (``static/<name>/``) and
URLs only, never models. Every package here is installed in every site.
"""
