"""The Harbor site: templates, static files and URLs."""
