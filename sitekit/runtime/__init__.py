"""What a release needs at run time: the rules about sites, gunicorn's hooks and the check
that every site's settings load. Nothing here imports the controller's tools (the catalogue
editor, the CLI, the deploy plan), which stay on the machine that deploys."""
