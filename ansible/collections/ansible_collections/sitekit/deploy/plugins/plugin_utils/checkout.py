"""Make the checkout's ``sitekit`` package importable from the collection's plugins."""

from __future__ import annotations

import sys
from pathlib import Path

# ansible/collections/ansible_collections/sitekit/deploy/plugins/plugin_utils/checkout.py
CHECKOUT = Path(__file__).resolve().parents[7]


def ensure_importable() -> Path:
    """Put the checkout on ``sys.path`` (if ``sitekit`` is not installed) and return it."""
    try:
        import sitekit  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(CHECKOUT))
    return CHECKOUT
