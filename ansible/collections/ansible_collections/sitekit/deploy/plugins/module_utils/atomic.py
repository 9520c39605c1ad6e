# Atomic file replacement shared by the collection's modules and plugins: a reader sees the old
# file or the new one, never a part.

from __future__ import annotations

import os
import tempfile


def write_atomic(path, data, mode, uid=-1, gid=-1, check=None):
    """Replace *path* with *data* (bytes) by rename: a reader sees the old file or the new one,
    never a part. The new file gets *mode*, and *uid*/*gid* where given; where both are -1 it
    keeps the owner of the file it replaces. *check*, if given, is called with the new file's
    temporary path before the rename: what it raises leaves *path* as it was."""
    if uid == -1 and gid == -1:
        try:
            st = os.stat(path)
            uid, gid = st.st_uid, st.st_gid
        except FileNotFoundError:
            pass
    fd, tmp = tempfile.mkstemp(prefix=".sitekit-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if uid != -1 or gid != -1:
            os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        if check is not None:
            check(tmp)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def symlink_atomic(path, target):
    """Make *path* a symbolic link to *target* by rename, whatever *path* was before."""
    tmp = f"{path}.sitekit-link"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.rename(tmp, path)
