"""The shared Django codebase of every sitekit site."""
