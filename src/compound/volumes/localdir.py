"""A volume read and written straight through its directory on this host.

The local driver keeps a volume's files in ``<Mountpoint>`` on the engine's
host; compound runs there as root, so it can read them with plain syscalls
(measured 1.6x faster for a backup and 1.8x for a restore than going
through the engine's archive API, see the README) and write a restore next
to them: the archive is extracted and verified into a staging directory
beside ``_data`` (same filesystem, outside the volume), and only then
swapped in by renames. A damaged archive, a full
disk or Ctrl-C leave the volume as it was.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from compound.engine import engine_address
from compound.errors import CompoundError
from compound.volumes.archive import ArchiveWriter, Meter, read_archive
from compound.volumes.manifest import ArchiveError, Entry, Manifest


def local_mountpoint(attrs: dict[str, Any], *, write: bool = False) -> Path | None:
    """The volume's directory if this process can use it directly: the local
    driver without a mount option (tmpfs/nfs/bind volumes are only mounted
    while a container uses them), an engine on this host, and permission."""
    options = attrs.get("Options") or {}
    if attrs.get("Driver") != "local" or "type" in options or "device" in options:
        return None
    if not engine_address().startswith("unix://"):
        return None
    mountpoint = Path(str(attrs.get("Mountpoint") or ""))
    if not mountpoint.is_absolute() or not mountpoint.is_dir():
        return None
    if write and os.geteuid() != 0:
        return None  # a restore sets owners: root only
    mode = os.R_OK | os.X_OK | (os.W_OK if write else 0)
    return mountpoint if os.access(mountpoint, mode) else None


# --- reading ----------------------------------------------------------------------


def _tarinfo(path: str, st: os.stat_result, full: Path, seen: dict[tuple[int, int], str]) -> Any:
    info = tarfile.TarInfo(path)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid, info.mtime = st.st_uid, st.st_gid, st.st_mtime
    mode = st.st_mode
    if stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in seen:
            info.type, info.linkname = tarfile.LNKTYPE, seen[key]
        else:
            seen[key] = path
            info.type, info.size = tarfile.REGTYPE, st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(full)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    else:
        return None  # a socket: nothing to archive (tar skips them too)
    return info


def walk(root: Path) -> Iterator[tuple[tarfile.TarInfo, str, Path]]:
    """(tar member, relative path, full path) of ``root`` and everything under
    it, parents first, names sorted (reproducible archives)."""
    seen: dict[tuple[int, int], str] = {}
    stack: list[tuple[str, Path]] = [(".", root)]
    while stack:
        rel, full = stack.pop()
        st = os.lstat(full)
        info = _tarinfo(rel, st, full, seen)
        if info is None:
            continue
        yield info, rel, full
        if info.isdir():
            with os.scandir(full) as it:
                names = sorted(e.name for e in it)
            prefix = "" if rel == "." else rel + "/"
            stack.extend((prefix + n, full / n) for n in reversed(names))


def backup_dir(root: Path, writer: ArchiveWriter, meter: Meter) -> None:
    """Everything under ``root`` into ``writer``; the byte total is known first
    (a stat walk costs little beside reading), so the progress bar has an end."""
    members = list(walk(root))
    meter.total(sum(i.size for i, _, _ in members if i.isreg()))
    for info, rel, full in members:
        if not info.isreg():
            writer.add(info, rel)
            continue
        try:
            f = open(full, "rb", buffering=0)  # noqa: SIM115 - closed right after
        except FileNotFoundError:
            writer.warnings.append(f"{rel} disappeared during the backup")
            continue
        with f:
            writer.add(info, rel, f)


# --- writing ----------------------------------------------------------------------


class DirExtractor:
    """Recreates archive members under an empty directory ``root``.

    Safe against hostile archives beyond the path checks of ``read_archive``:
    a member is created only inside a directory this extractor made itself
    (never through a symlink from the archive), files are opened with
    O_NOFOLLOW|O_EXCL, hardlinks may point only at files it extracted.
    Directory owners, modes and mtimes are applied last, deepest first.
    """

    def __init__(self, root: Path, label: str) -> None:
        self.root = root
        self.label = label
        self.dirs: set[str] = {"."}
        self.files: set[str] = set()
        self.seen: set[str] = set()
        self.deferred: list[Entry] = []

    def add(self, entry: Entry, chunks: Iterator[bytes]) -> None:
        if entry.path in self.seen:
            raise ArchiveError(self.label, f"{entry.path} appears twice in the archive")
        self.seen.add(entry.path)
        if entry.path == ".":
            self.deferred.append(entry)
            return
        parent = entry.path.rpartition("/")[0] or "."
        if parent not in self.dirs:
            raise ArchiveError(
                self.label, f"{entry.path}: its parent is not a directory of the archive (refused)"
            )
        target = self.root / entry.path
        try:
            self._create(entry, target, chunks)
        except OSError as exc:
            raise CompoundError(
                f"cannot write {target}: {exc.strerror or exc}",
                hint="the volume was not changed; free space or fix permissions, then retry",
            ) from None

    def _create(self, entry: Entry, target: Path, chunks: Iterator[bytes]) -> None:
        if entry.type == "dir":
            os.mkdir(target, 0o700)
            self.dirs.add(entry.path)
            self.deferred.append(entry)
            return
        if entry.type == "file":
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(target, flags, 0o600)
            try:
                for data in chunks:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                os.fchown(fd, entry.uid, entry.gid)
                os.fchmod(fd, entry.mode)  # after chown, which clears setuid bits
            finally:
                os.close(fd)
            self.files.add(entry.path)
        elif entry.type == "hardlink":
            if entry.link not in self.files:
                raise ArchiveError(
                    self.label, f"{entry.path}: hardlink to {entry.link}, not an extracted file"
                )
            os.link(self.root / str(entry.link), target, follow_symlinks=False)
            return  # shares the inode, owner and times of its target
        elif entry.type == "symlink":
            os.symlink(str(entry.link), target)
            os.lchown(target, entry.uid, entry.gid)
        else:
            kind = {"fifo": stat.S_IFIFO, "chardev": stat.S_IFCHR, "blockdev": stat.S_IFBLK}
            dev = os.makedev(*entry.device) if entry.device else 0
            os.mknod(target, entry.mode | kind[entry.type], dev)
            os.lchown(target, entry.uid, entry.gid)
            os.chmod(target, entry.mode)
        os.utime(target, (entry.mtime, entry.mtime), follow_symlinks=False)

    def finish(self) -> None:
        for entry in reversed(self.deferred):
            target = self.root if entry.path == "." else self.root / entry.path
            os.chown(target, entry.uid, entry.gid)
            os.chmod(target, entry.mode)
            os.utime(target, (entry.mtime, entry.mtime))


def restore_dir(archive: Path, mountpoint: Path, meter: Meter) -> Manifest:
    """Replace the contents of ``mountpoint`` by the archive's, only once the
    whole archive is extracted and verified beside it."""
    parent = mountpoint.parent
    if os.stat(parent).st_dev != os.stat(mountpoint).st_dev:
        # something (tmpfs, nfs) is mounted on the volume: stage inside it, so
        # the swap is still renames within one filesystem; a volume too small
        # for both copies fails before the old files are touched
        parent = mountpoint
    staging = parent / f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
    os.mkdir(staging, 0o700)
    try:
        manifest = read_archive(archive, DirExtractor(staging, str(archive)), meter)
        _swap(staging, mountpoint)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


# The restore's own directories. Inside a volume (tmpfs, or the engine path)
# a restore killed outright can leave one behind; the next restore's swap
# moves it out with the rest of the old contents.
STAGING_PREFIX = ".compound-restore-"
TRASH_PREFIX = ".compound-old-"


def _swap(staging: Path, mountpoint: Path) -> None:
    """Old contents out, new ones in: renames within one filesystem, undone
    if one fails halfway; the old files are deleted only at the end. The
    staging and trash directories may live inside ``mountpoint`` itself."""
    inside = staging.parent == mountpoint
    trash = (mountpoint if inside else mountpoint.parent) / f"{TRASH_PREFIX}{uuid.uuid4().hex[:8]}"
    os.mkdir(trash, 0o700)
    ours = {staging.name, trash.name} if inside else set()
    moved_out: list[str] = []
    moved_in: list[str] = []
    try:
        for name in os.listdir(mountpoint):
            if name in ours:
                continue
            os.rename(mountpoint / name, trash / name)
            moved_out.append(name)
        for name in os.listdir(staging):
            os.rename(staging / name, mountpoint / name)
            moved_in.append(name)
        st = os.stat(staging)
        os.chown(mountpoint, st.st_uid, st.st_gid)
        os.chmod(mountpoint, stat.S_IMODE(st.st_mode))
        os.utime(mountpoint, ns=(st.st_atime_ns, st.st_mtime_ns))
    except BaseException as exc:  # Ctrl-C too: never leave a half-swapped volume
        try:
            for name in moved_in:
                os.rename(mountpoint / name, staging / name)
            for name in moved_out:
                os.rename(trash / name, mountpoint / name)
        except OSError:
            raise CompoundError(
                f"restore failed halfway through swapping files ({exc}); the previous"
                f" contents are kept in {trash}",
                hint=f"move them back into {mountpoint} by hand, or restore again",
            ) from exc
        os.rmdir(trash)
        raise
    shutil.rmtree(trash, ignore_errors=True)
