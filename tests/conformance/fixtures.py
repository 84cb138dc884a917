"""Build a case's fixture inside a target's working directory.

A fixture is a list of entries (see corpus.json and docs/conformance.md), each one of:

* ``{"path": P, "text": S}``            UTF-8 text file
* ``{"path": P, "base64": B}``          binary file
* ``{"path": P, "repeat": S, "times": N, "prefix": S?, "suffix": S?}``
                                        generated text (prefix + S*N + suffix), for big files
* ``{"path": P, "parts": [[S, N], …]}``  generated text: the concatenation of each S repeated N times
* ``{"path": P, "base64": B, "pad_to": N}``  binary padded with zero bytes to N bytes
* ``{"path": P, "dir": true}``          directory
* ``{"path": P, "symlink": T}``         symlink; in T ``<WORKDIR>`` becomes the workdir as the tools
                                        see it and ``<OUTSIDE>`` the host "outside" directory
* ``{"path": P, "fifo": true}``         named pipe

``"count": N`` on an entry repeats it N times with ``{i}`` in ``path`` (and ``text``) replaced by
0..N-1 (Python format spec allowed, e.g. ``f{i:03}.txt``); with ``"mtime"`` set, ``"mtime_step"``
is added per repetition.

Optional on every entry: ``"mtime": seconds-since-epoch`` and ``"mode": "0644"`` (octal string).
``path`` is relative to the workdir; a path starting with ``<OUTSIDE>/`` lands in the
target's "outside" directory (a sibling that is not part of the session's workdir).

Every created path gets the owner of the workdir directory itself: under
``--isolation process`` the worker hands the workspace to a subordinate uid and files
the runner creates afterwards must belong to it too, or writes inside the sandbox fail.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat

OUTSIDE_PREFIX = "<OUTSIDE>/"


class FixtureError(ValueError):
    """The corpus describes a fixture entry this module cannot build."""


def clear_dir(path: str) -> None:
    """Delete the contents of ``path`` but keep the directory (it may be a bind mount)."""
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            _make_writable(full)
            shutil.rmtree(full)
        else:
            os.unlink(full)


def _make_writable(tree: str) -> None:
    # A case may chmod a directory to 0500; rmtree would then fail on its children.
    for root, dirs, _files in os.walk(tree):
        for d in dirs:
            full = os.path.join(root, d)
            if not os.path.islink(full):
                os.chmod(full, 0o755)
    os.chmod(tree, 0o755)


def _content(entry: dict) -> bytes:
    if "text" in entry:
        return entry["text"].encode("utf-8")
    if "repeat" in entry:
        times = int(entry.get("times", 1))
        text = entry.get("prefix", "") + entry["repeat"] * times + entry.get("suffix", "")
        return text.encode("utf-8")
    if "parts" in entry:
        return "".join(str(text) * int(times) for text, times in entry["parts"]).encode("utf-8")
    if "base64" in entry:
        data = base64.b64decode(entry["base64"])
        pad_to = entry.get("pad_to")
        if pad_to is not None:
            data = data + b"\0" * max(0, int(pad_to) - len(data))
        return data
    raise FixtureError(f"fixture entry {entry!r} needs one of text, repeat, parts, base64, dir, symlink, fifo")


def _host_path(entry_path: str, workdir: str, outside: str) -> str:
    if entry_path.startswith(OUTSIDE_PREFIX):
        base, rel = outside, entry_path[len(OUTSIDE_PREFIX):]
    else:
        base, rel = workdir, entry_path
    full = os.path.normpath(os.path.join(base, rel))
    if os.path.commonpath([full, base]) != base:
        raise FixtureError(f"fixture path {entry_path!r} leaves its base directory")
    return full


def expand_counts(entries: list[dict]) -> list[dict]:
    """Expand ``count`` entries into one entry per index."""
    out: list[dict] = []
    for entry in entries:
        count = entry.get("count")
        if count is None:
            out.append(entry)
            continue
        for i in range(int(count)):
            copy = {k: v for k, v in entry.items() if k not in ("count", "mtime_step")}
            copy["path"] = entry["path"].format(i=i)
            if "text" in entry:
                copy["text"] = entry["text"].format(i=i)
            if "mtime" in entry:
                copy["mtime"] = float(entry["mtime"]) + i * float(entry.get("mtime_step", 0))
            out.append(copy)
    return out


class FixtureBuilder:
    """Creates fixture entries for one target, owned like the target's workdir."""

    def __init__(self, workdir: str, outside: str, visible_workdir: str | None = None) -> None:
        self.workdir = workdir
        self.outside = outside
        # Absolute symlink targets must name the workdir the way the tools see it
        # (``/workspace`` inside the sandbox).
        self.visible_workdir = visible_workdir or workdir

    def _owner(self) -> tuple[int, int]:
        # Re-read every time: the sandbox chowns the workdir when its session starts.
        st = os.stat(self.workdir)
        return st.st_uid, st.st_gid

    def _chown_new(self, path: str, base: str, owner: tuple[int, int]) -> None:
        """chown ``path`` and any parents between it and ``base`` (created by makedirs)."""
        current = path
        while True:
            os.lchown(current, *owner)
            parent = os.path.dirname(current)
            if parent == base or len(parent) <= len(base):
                break
            current = parent

    def reset(self) -> None:
        clear_dir(self.workdir)
        clear_dir(self.outside)

    def build(self, entries: list[dict]) -> None:
        owner = self._owner()
        entries = expand_counts(entries)
        deferred_modes: list[tuple[str, int]] = []
        deferred_mtimes: list[tuple[str, float]] = []
        for entry in entries:
            path = entry.get("path")
            if not isinstance(path, str) or not path:
                raise FixtureError(f"fixture entry {entry!r} has no path")
            full = _host_path(path, self.workdir, self.outside)
            base = self.outside if path.startswith(OUTSIDE_PREFIX) else self.workdir
            os.makedirs(os.path.dirname(full), exist_ok=True)
            if entry.get("dir"):
                os.makedirs(full, exist_ok=True)
            elif entry.get("fifo"):
                os.mkfifo(full)
            elif "symlink" in entry:
                target = entry["symlink"].replace("<WORKDIR>", self.visible_workdir).replace("<OUTSIDE>", self.outside)
                os.symlink(target, full)
            else:
                with open(full, "wb") as fh:
                    fh.write(_content(entry))
            self._chown_new(full, base, owner)
            if "mode" in entry:
                deferred_modes.append((full, int(entry["mode"], 8)))
            if "mtime" in entry:
                deferred_mtimes.append((full, float(entry["mtime"])))
        # Modes and mtimes last: creating children would bump a directory's mtime and a
        # read-only directory could not receive its children.
        for full, mtime in deferred_mtimes:
            os.utime(full, (mtime, mtime), follow_symlinks=False)
        for full, mode in deferred_modes:
            if not stat.S_ISLNK(os.lstat(full).st_mode):
                os.chmod(full, mode)
