"""The Meadow site: templates, static files and URLs."""
