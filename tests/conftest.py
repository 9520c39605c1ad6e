"""Shared test configuration, loaded before Django is set up.

Settings modules require SITEKIT_SECRET_KEY; give the test run one unless the
environment already provides it.
"""

import os

os.environ.setdefault("SITEKIT_SECRET_KEY", "sitekit-tests-insecure-secret-key")
