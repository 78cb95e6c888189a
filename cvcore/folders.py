"""Image data sets laid out one folder per class, and their validation split.

The layout Keras reads with ``keras.utils.image_dataset_from_directory``
(formerly ``ImageDataGenerator.flow_from_directory``)::

    root/
      Black-grass/   1.png 2.png ...
      Charlock/      ...

:func:`scan_image_folder` checks every file (an untrusted folder can hold
anything) and says which could not be read and why; :func:`count_image_files`
says, without opening a file, how long that will be, and :func:`scan_job`
runs a big scan as a job on Ray (:mod:`cvcore.jobs`). :func:`make_split`
chooses the validation images as an *index*: unlike the seed, which moved
12 images per class into another folder with ``os.rename``, the user's files
are never moved or changed. :class:`ImageDataset` keeps the scan and the
split together and saves them as one JSON manifest, beside the data rather
than inside it, so later pages (and later sessions) reuse the same split.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import CvcoreError, InvalidImageError
from .imagefile import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, load_image, probe_image

__all__ = [
    "IMAGE_EXTENSIONS",
    "FolderScan",
    "ImageDataset",
    "scan_image_folder",
    "count_image_files",
    "scan_job",
    "find_dataset_roots",
    "make_split",
    "DEFAULT_MAX_SCAN_FILES",
]

# What PIL reads; Keras' image_dataset_from_directory itself takes .jpeg/.jpg/.png/.bmp/.gif.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
DEFAULT_MAX_SCAN_FILES = 100_000
MANIFEST_VERSION = 1
SCAN_VERSION = 1  # of FolderScan.to_json


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def _class_dirs(root: Path) -> list[str]:
    # Keras sorts class folders alphanumerically; so do we, so that labels agree.
    return sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False) and not _hidden(e.name))


def find_dataset_roots(path, *, max_depth: int = 3) -> list[Path]:
    """Folders under ``path`` laid out as a data set: sub-folders (the classes) that hold images.

    A zip often wraps the class folders in one or two folders of its own
    (``seedlings/train/Black-grass/...``); this finds the level the classes
    are at, and every such level when there are several (``train/`` and
    ``valid/``).

    Args:
        path: the folder to search.
        max_depth: how many levels down to look, 0 to 6.

    Returns:
        The candidate roots, shallowest first, then by name; empty when none.

    Example:
        >>> import tempfile; from pathlib import Path
        >>> top = Path(tempfile.mkdtemp()); (top / "zip/train/cats").mkdir(parents=True)
        >>> (top / "zip/train/cats/1.png").write_bytes(b"")
        0
        >>> [str(p.relative_to(top)) for p in find_dataset_roots(top)]
        ['zip/train']
    """
    if not 0 <= int(max_depth) <= 6:
        raise CvcoreError(f"`max_depth` must be from 0 to 6; received {max_depth!r}.")
    path = Path(path)
    if not path.is_dir():
        raise CvcoreError(f"There is no folder at {str(path)!r}.")
    found = []

    def has_images(folder: Path) -> bool:
        return any(e.is_file(follow_symlinks=False) and e.name.lower().endswith(IMAGE_EXTENSIONS)
                   for e in os.scandir(folder))

    def visit(folder: Path, depth: int) -> None:
        classes = _class_dirs(folder)
        if classes and any(has_images(folder / c) for c in classes):
            found.append(folder)
        if depth < max_depth:
            for c in classes:
                visit(folder / c, depth + 1)

    visit(path, 0)
    return sorted(found, key=lambda p: (len(p.parts), str(p)))


@dataclass
class FolderScan:
    """What :func:`scan_image_folder` found.

    ``files``, ``labels``, ``sizes`` (height, width) and ``conversions`` are
    parallel, in Keras' order: by class, then by path. ``unreadable`` holds
    ``(relative path, reason)`` for everything skipped.
    """

    root: Path
    classes: list
    files: list = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    sizes: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    conversions: list = field(default_factory=list)
    file_stats: list = field(default_factory=list)  # (bytes, mtime_ns): what the cache keys use
    unreadable: list = field(default_factory=list)
    nested: list = field(default_factory=list)  # classes whose images sit in sub-folders
    stopped: bool = False
    seconds: float = 0.0

    @property
    def counts(self) -> dict:
        """Readable images per class, every class included."""
        n = np.bincount(self.labels, minlength=len(self.classes)) if len(self.labels) else np.zeros(len(self.classes), int)
        return {c: int(k) for c, k in zip(self.classes, n)}

    def to_json(self) -> dict:
        """The scan as plain JSON (what a scan job leaves on disk); :meth:`from_json` reads it back."""
        return {
            "version": SCAN_VERSION, "root": str(self.root), "classes": list(self.classes), "files": list(self.files),
            "labels": np.asarray(self.labels).tolist(), "sizes": np.asarray(self.sizes).reshape(-1, 2).tolist(),
            "conversions": list(self.conversions), "file_stats": [list(s) for s in self.file_stats],
            "unreadable": [list(u) for u in self.unreadable], "nested": list(self.nested),
            "stopped": bool(self.stopped), "seconds": float(self.seconds),
        }

    @classmethod
    def from_json(cls, obj) -> "FolderScan":
        """The scan :meth:`to_json` wrote.

        Raises:
            CvcoreError: when ``obj`` is not such a scan (a damaged or foreign file).

        Example:
            >>> from cvcore.samples import digits_dataset
            >>> scan = scan_image_folder(digits_dataset(per_class=2).root)
            >>> again = FolderScan.from_json(json.loads(json.dumps(scan.to_json())))
            >>> again.counts == scan.counts, again.files == scan.files, again.file_stats == scan.file_stats
            (True, True, True)
        """
        try:
            if obj.get("version") != SCAN_VERSION:
                raise CvcoreError(f"Scan version {obj.get('version')!r} is not {SCAN_VERSION}.")
            scan = cls(root=Path(obj["root"]), classes=list(obj["classes"]), files=list(obj["files"]),
                       labels=np.asarray(obj["labels"], np.int64), sizes=np.asarray(obj["sizes"], np.int64).reshape(-1, 2),
                       conversions=list(obj["conversions"]), file_stats=[tuple(s) for s in obj["file_stats"]],
                       unreadable=[tuple(u) for u in obj["unreadable"]], nested=list(obj["nested"]),
                       stopped=bool(obj["stopped"]), seconds=float(obj["seconds"]))
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise CvcoreError(f"The saved folder scan is damaged ({type(err).__name__}: {err}).") from None
        n = len(scan.files)
        if not (len(scan.labels) == len(scan.sizes) == len(scan.conversions) == len(scan.file_stats) == n):
            raise CvcoreError("The saved folder scan is damaged (its lists differ in length).")
        return scan

    def save(self, path) -> Path:
        """Write :meth:`to_json` to ``path``, atomically (a reader never sees half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_json()))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path) -> "FolderScan":
        """Read a scan written by :meth:`save`.

        Raises:
            CvcoreError: when the file is missing, unreadable or damaged.
        """
        try:
            obj = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise CvcoreError(f"Cannot read the saved folder scan {str(path)!r} ({err}).") from None
        return cls.from_json(obj)


def scan_image_folder(root, *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int = DEFAULT_MAX_BYTES,
                      max_files: int = DEFAULT_MAX_SCAN_FILES, workers: int = 4,
                      on_progress=None, should_stop=None) -> FolderScan:
    """Scan a folder of class folders: the classes, the images per class, and every file that cannot be read.

    Every file is decoded (JPEGs at a reduced scale) with the caps of
    :func:`cvcore.imagefile.probe_image`, so a truncated file, a text file
    named ``.jpg``, a decompression bomb or an unsupported mode is reported
    with its reason and skipped, never loaded later by surprise. Links are
    not followed. Files beside the class folders, and files that are not
    images, are reported too; hidden files are ignored. Nothing is written.

    Args:
        root: the data set's folder (its sub-folders are the classes).
        max_pixels: the most pixels one image may have.
        max_bytes: the most bytes one file may have.
        max_files: the most files looked at; past it, the scan refuses.
        workers: threads decoding at once (decoding releases the GIL).
        on_progress: optional ``callable(done, total)``, called as files are checked.
        should_stop: optional ``callable() -> bool``; when it returns True the
            scan ends early with ``stopped=True`` and what it has.

    Returns:
        :class:`FolderScan`.

    Raises:
        CvcoreError: when ``root`` is not a folder, has no class folders, or
            holds more than ``max_files`` files.

    Example:
        >>> import tempfile; from pathlib import Path; from PIL import Image
        >>> root = Path(tempfile.mkdtemp()); (root / "cats").mkdir()
        >>> Image.new("RGB", (8, 6)).save(root / "cats" / "a.png")
        >>> (root / "cats" / "notes.jpg").write_text("not an image")
        12
        >>> scan = scan_image_folder(root)
        >>> scan.counts, scan.unreadable[0][0]
        ({'cats': 1}, 'cats/notes.jpg')
    """
    root = Path(root)
    if not root.is_dir():
        raise CvcoreError(f"There is no folder at {str(root)!r}.")
    if not 1 <= int(workers) <= 32:
        raise CvcoreError(f"`workers` must be from 1 to 32; received {workers!r}.")
    started = time.perf_counter()
    classes = _class_dirs(root)
    if not classes:
        raise CvcoreError(
            f"{root.name!r} has no class folders: put the images of each class in a folder of its own "
            "(root/cats/1.png, root/dogs/2.png, ...)."
        )
    unreadable, candidates, nested = [], [], set()
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.is_file(follow_symlinks=False) and not _hidden(entry.name):
            unreadable.append((entry.name, "not inside a class folder; Keras would ignore it"))
    for label, cname in enumerate(classes):
        for dirpath, dirnames, filenames in os.walk(root / cname, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not _hidden(d))
            here = Path(dirpath)
            for name in sorted(filenames):
                if _hidden(name):
                    continue
                path = here / name
                rel = path.relative_to(root).as_posix()
                if path.is_symlink():
                    unreadable.append((rel, "a link; links are not followed"))
                elif not name.lower().endswith(IMAGE_EXTENSIONS):
                    unreadable.append((rel, f"not an image file (extension {Path(name).suffix or 'none'!r})"))
                else:
                    candidates.append((rel, label))
                    if here != root / cname:
                        nested.add(cname)
                if len(candidates) + len(unreadable) > max_files:
                    raise CvcoreError(
                        f"{root.name!r} holds more than {max_files:,} files; pick a smaller folder."
                    )

    def check(item):
        rel, _ = item
        path = root / rel
        try:
            info = probe_image(path, max_pixels, max_bytes=max_bytes)
            st = path.stat()
            return info, (st.st_size, st.st_mtime_ns)
        except InvalidImageError as err:
            return str(err), None

    results, stopped = [], False
    total = len(candidates)
    with ThreadPoolExecutor(max_workers=int(workers)) as pool:
        # in chunks, so that a stop request is honoured within one chunk
        chunk = max(8, 4 * int(workers))
        for start in range(0, total, chunk):
            if should_stop is not None and should_stop():
                stopped = True
                break
            results.extend(pool.map(check, candidates[start:start + chunk]))
            if on_progress is not None:
                on_progress(len(results), total)
    files, labels, sizes, conversions, stats = [], [], [], [], []
    for (rel, label), (info, stat_) in zip(candidates, results):
        if stat_ is None:
            unreadable.append((rel, info))
            continue
        files.append(rel)
        labels.append(label)
        sizes.append((info.height, info.width))
        conversions.append(info.conversion)
        stats.append(stat_)
    return FolderScan(
        root=root, classes=classes, files=files, labels=np.asarray(labels, np.int64),
        sizes=np.asarray(sizes, np.int64).reshape(-1, 2), conversions=conversions, file_stats=stats,
        unreadable=unreadable, nested=sorted(nested), stopped=stopped, seconds=time.perf_counter() - started,
    )


def count_image_files(root, *, stop_after: int | None = None) -> int:
    """How many files :func:`scan_image_folder` would decode: a directory walk, nothing opened.

    Counts the files with an image extension inside the class folders (and
    their sub-folders), as the scan does: hidden files and folders are left
    out, links are neither counted nor followed. Cheap enough to decide,
    before a scan, whether it is long work.

    Args:
        root: the data set's folder.
        stop_after: stop counting past this many (the answer is then ``stop_after + 1``); None: count all.

    Returns:
        The number of image files (at most ``stop_after + 1``); 0 when ``root`` has no class folders.

    Raises:
        CvcoreError: when ``root`` is not a folder, or ``stop_after`` is negative.

    Example:
        >>> import tempfile; from pathlib import Path
        >>> root = Path(tempfile.mkdtemp()); (root / "cats").mkdir(); (root / "dogs").mkdir()
        >>> for name in ("cats/1.png", "cats/2.jpg", "dogs/3.png", "dogs/notes.txt", "dogs/.hidden.png"):
        ...     _ = (root / name).write_bytes(b"")
        >>> count_image_files(root), count_image_files(root, stop_after=1)
        (3, 2)
    """
    root = Path(root)
    if not root.is_dir():
        raise CvcoreError(f"There is no folder at {str(root)!r}.")
    if stop_after is not None and int(stop_after) < 0:
        raise CvcoreError(f"`stop_after` must be 0 or more; received {stop_after!r}.")
    n = 0
    for cname in _class_dirs(root):
        for dirpath, dirnames, filenames in os.walk(root / cname, followlinks=False):
            dirnames[:] = [d for d in dirnames if not _hidden(d)]
            for name in filenames:
                if _hidden(name) or not name.lower().endswith(IMAGE_EXTENSIONS):
                    continue
                if os.path.islink(os.path.join(dirpath, name)):
                    continue
                n += 1
                if stop_after is not None and n > int(stop_after):
                    return n
    return n


def scan_job(ctx, *, root: str, out: str) -> dict:
    """:func:`scan_image_folder` as a job (:mod:`cvcore.jobs`): the Data page's scan of a big folder.

    A worker calls it as ``fn(ctx, **config)``: it reports ``{"done", "total"}`` as files are checked and
    ends early when ``ctx.should_stop()`` turns true. The scan itself is too big to travel back as a job's
    result: it is written to ``out`` (in the user's workspace) with :meth:`FolderScan.save`, to be read
    with :meth:`FolderScan.load`; a stopped scan writes nothing.

    Args:
        ctx: the job's :class:`cvcore.jobs.JobContext`.
        root: the data set's folder (a path, as a string).
        out: the JSON file to write the scan into.

    Returns:
        Small JSON: ``{"out": out or None when stopped, "stopped", "classes", "files", "unreadable", "seconds"}``.

    Raises:
        CvcoreError: as :func:`scan_image_folder` does (no class folders, too many files).

    Example:
        >>> import tempfile; from pathlib import Path; from PIL import Image
        >>> from cvcore.jobs import run_inline
        >>> root = Path(tempfile.mkdtemp()); (root / "cats").mkdir()
        >>> Image.new("RGB", (8, 8)).save(root / "cats" / "a.png")
        >>> out = tempfile.mkdtemp() + "/scan.json"
        >>> summary = run_inline("cvcore.folders:scan_job", {"root": str(root), "out": out})
        >>> summary["files"], summary["stopped"], FolderScan.load(out).counts
        (1, False, {'cats': 1})
    """
    scan = scan_image_folder(root, on_progress=lambda done, total: ctx.report({"done": done, "total": total}),
                             should_stop=ctx.should_stop)
    if not scan.stopped:
        scan.save(out)
    return {"out": None if scan.stopped else str(out), "stopped": bool(scan.stopped), "classes": len(scan.classes),
            "files": len(scan.files), "unreadable": len(scan.unreadable), "seconds": round(float(scan.seconds), 3)}


def make_split(labels, *, per_class: int | None = None, fraction: float | None = None, seed: int = 0) -> np.ndarray:
    """Choose validation images, stratified by class and seeded: an index, no file moves.

    Give exactly one of ``per_class`` (the seed set aside 12 images of each
    class) or ``fraction``. Every class keeps at least one training image; a
    class with one image has none in validation. The same labels and seed
    always give the same split, and each class's choice depends only on its
    own images and the seed.

    Args:
        labels: int array, the class of each image.
        per_class: validation images per class, >= 0.
        fraction: the share of each class for validation, in [0, 1).
        seed: the random seed.

    Returns:
        bool array like ``labels``: True for a validation image.

    Example:
        >>> make_split([0, 0, 0, 1, 1, 1], per_class=1, seed=0).sum()
        np.int64(2)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise CvcoreError(f"`labels` must be a 1-D array of integers; received shape {labels.shape}, dtype {labels.dtype}.")
    if (per_class is None) == (fraction is None):
        raise CvcoreError(f"Give exactly one of `per_class` and `fraction`; received per_class={per_class!r}, fraction={fraction!r}.")
    if per_class is not None and (isinstance(per_class, bool) or int(per_class) != per_class or per_class < 0):
        raise CvcoreError(f"`per_class` must be a whole number >= 0; received {per_class!r}.")
    if fraction is not None and not (0.0 <= float(fraction) < 1.0):
        raise CvcoreError(f"`fraction` must be from 0 up to (not including) 1; received {fraction!r}.")
    validation = np.zeros(labels.shape, bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n = int(per_class) if per_class is not None else int(round(len(members) * float(fraction)))
        n = min(n, len(members) - 1)
        if n <= 0:
            continue
        rng = np.random.default_rng([int(seed), int(label)])
        validation[rng.choice(members, size=n, replace=False)] = True
    return validation


@dataclass
class ImageDataset:
    """A scanned image folder with its validation split: what the Data page hands to later pages.

    Attributes:
        root: the folder of class folders.
        name: a short name to show.
        classes: class names, Keras' order.
        files: readable images, relative POSIX paths, parallel to ``labels``.
        labels: int array.
        validation: bool array, True for validation images (the split index).
        split: how the split was made, e.g. ``{"per_class": 12, "seed": 0}``.
        sizes: (height, width) per image.
        file_stats: (bytes, mtime_ns) per image.
        unreadable: ``(relative path, reason)`` for files left out.
        source: where it came from: "upload", "server" or "demo".
    """

    root: Path
    name: str
    classes: list
    files: list
    labels: np.ndarray
    validation: np.ndarray
    split: dict
    sizes: np.ndarray
    file_stats: list
    unreadable: list
    source: str = "server"

    @classmethod
    def from_scan(cls, scan: FolderScan, *, name: str | None = None, source: str = "server",
                  per_class: int | None = None, fraction: float | None = None, seed: int = 0) -> "ImageDataset":
        """A data set from a scan and a new split (see :func:`make_split`)."""
        if per_class is None and fraction is None:
            fraction = 0.2
        validation = make_split(scan.labels, per_class=per_class, fraction=fraction, seed=seed)
        split = {"per_class": per_class, "fraction": fraction, "seed": int(seed)}
        return cls(root=Path(scan.root), name=name or Path(scan.root).name, classes=list(scan.classes),
                   files=list(scan.files), labels=np.asarray(scan.labels, np.int64), validation=validation,
                   split=split, sizes=np.asarray(scan.sizes), file_stats=list(scan.file_stats),
                   unreadable=list(scan.unreadable), source=source)

    @classmethod
    def from_scan_like(cls, scan: FolderScan, like: "ImageDataset", *, name: str | None = None,
                       source: str = "derived") -> "ImageDataset":
        """A data set from a scan of images derived one by one from ``like``'s (background removed,
        say), keeping ``like``'s split: a derived file is in validation when the file it came from was.

        Files are matched by class folder and name without extension (``rose/1.jpg`` ->
        ``rose/1.png``, or ``rose/1_jpg.png``, the name a folder run gives when ``1.png`` is taken);
        a file with no match goes to training.

        Example:
            >>> from cvcore.samples import digits_dataset
            >>> original = digits_dataset(per_class=3)
            >>> same = ImageDataset.from_scan_like(scan_image_folder(original.root), original)
            >>> bool((same.validation == original.validation).all()), int(same.validation.sum())
            (True, 10)
        """
        origin = {}
        for rel, val in zip(like.files, like.validation.tolist()):
            stem, _, ext = rel.rpartition(".")
            origin[stem] = val
            origin[f"{stem}_{ext}"] = val
        validation = np.array([origin.get(rel.rpartition(".")[0], False) for rel in scan.files], bool)
        ds = cls.from_scan(scan, name=name, source=source, fraction=0.0)
        ds.validation = validation
        ds.split = dict(like.split, derived_from=like.name)
        return ds

    def resplit(self, *, per_class: int | None = None, fraction: float | None = None, seed: int = 0) -> "ImageDataset":
        """The same images with a new split."""
        from dataclasses import replace

        validation = make_split(self.labels, per_class=per_class, fraction=fraction, seed=seed)
        return replace(self, validation=validation, split={"per_class": per_class, "fraction": fraction, "seed": int(seed)})

    def __len__(self) -> int:
        return len(self.files)

    @property
    def counts(self) -> dict:
        """``{class: (train, validation)}`` image counts."""
        out = {}
        for i, c in enumerate(self.classes):
            member = self.labels == i
            out[c] = (int((member & ~self.validation).sum()), int((member & self.validation).sum()))
        return out

    def subset(self, which: str):
        """``(paths, labels)`` of ``"train"``, ``"validation"`` or ``"all"``, paths absolute."""
        if which not in ("train", "validation", "all"):
            raise CvcoreError(f"`which` must be 'train', 'validation' or 'all'; received {which!r}.")
        keep = np.ones(len(self.files), bool) if which == "all" else (self.validation if which == "validation" else ~self.validation)
        idx = np.flatnonzero(keep)
        return [self.root / self.files[i] for i in idx], self.labels[idx]

    def image(self, index: int, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """Image ``index`` as uint8 H x W x 3 RGB (through :func:`cvcore.imagefile.load_image`)."""
        if not 0 <= int(index) < len(self.files):
            raise CvcoreError(f"`index` must be from 0 to {len(self.files) - 1}; received {index!r}.")
        return load_image(self.root / self.files[int(index)], max_pixels)

    def fingerprint(self) -> str:
        """A hash of the classes and the exact file list (names, sizes, modification times).

        Caches of anything computed from the images (bottleneck features) key on
        it, so that a changed file is never served stale results.
        """
        h = hashlib.sha256()
        h.update(json.dumps([str(self.root), self.classes]).encode())
        for rel, label, (size, mtime) in zip(self.files, self.labels.tolist(), self.file_stats):
            h.update(f"{rel}\0{label}\0{size}\0{mtime}\n".encode())
        return h.hexdigest()[:32]

    # ------------------------------------------------------------ the manifest

    def to_json(self) -> dict:
        return {
            "version": MANIFEST_VERSION, "root": str(self.root), "name": self.name, "source": self.source,
            "classes": self.classes, "files": self.files, "labels": self.labels.tolist(),
            "validation": np.flatnonzero(self.validation).tolist(), "split": self.split,
            "sizes": self.sizes.tolist(), "file_stats": [list(s) for s in self.file_stats],
            "unreadable": [list(u) for u in self.unreadable], "fingerprint": self.fingerprint(),
        }

    @classmethod
    def from_json(cls, obj: dict) -> "ImageDataset":
        try:
            if obj.get("version") != MANIFEST_VERSION:
                raise CvcoreError(f"Manifest version {obj.get('version')!r} is not {MANIFEST_VERSION}.")
            n = len(obj["files"])
            validation = np.zeros(n, bool)
            validation[np.asarray(obj["validation"], np.int64)] = True
            ds = cls(root=Path(obj["root"]), name=obj["name"], classes=list(obj["classes"]), files=list(obj["files"]),
                     labels=np.asarray(obj["labels"], np.int64), validation=validation, split=dict(obj["split"]),
                     sizes=np.asarray(obj["sizes"], np.int64).reshape(-1, 2),
                     file_stats=[tuple(s) for s in obj["file_stats"]],
                     unreadable=[tuple(u) for u in obj["unreadable"]], source=obj.get("source", "server"))
        except (KeyError, TypeError, IndexError, ValueError) as err:
            raise CvcoreError(f"The data set manifest is damaged ({type(err).__name__}: {err}).") from None
        if len(ds.labels) != n or len(ds.file_stats) != n:
            raise CvcoreError("The data set manifest is damaged (its lists differ in length).")
        return ds

    def save(self, path) -> Path:
        """Write the manifest (scan and split) as JSON to ``path``, atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_json()))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path) -> "ImageDataset":
        """Read a manifest written by :meth:`save`."""
        try:
            obj = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise CvcoreError(f"Cannot read the data set manifest {str(path)!r} ({err}).") from None
        return cls.from_json(obj)
