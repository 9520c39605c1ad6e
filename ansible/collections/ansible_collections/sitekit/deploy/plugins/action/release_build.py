"""Build the release on the control machine, in this process (``sitekit release build``).

An action, not a ``command`` task that runs ``python -m sitekit release build``, for a measured
reason: that task started Ansible's module wrapper and then a second Python that imported
sitekit again, about half a second of every deploy (a no-op one included) spent finding out
that the release is already built.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ansible.plugins.action import ActionBase
from ansible_collections.sitekit.deploy.plugins.plugin_utils.checkout import ensure_importable

ensure_importable()

from sitekit import release  # noqa: E402


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        try:
            built = release.build(
                Path(str(args["project"])),
                Path(str(args["out"])),
                python=str(args.get("python") or sys.executable),
            )
        except (KeyError, OSError, release.ReleaseError) as e:
            result.update(failed=True, msg=f"the release cannot be built: {e}")
            return result
        result.update(built.as_dict())
        return result
