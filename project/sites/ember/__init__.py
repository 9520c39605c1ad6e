"""The Ember site: templates, static files and URLs."""
