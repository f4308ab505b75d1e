"""Data sets for the notebooks: small ones that ship with our libraries, and downloads.

Offline, always available:

- :func:`load_digits`: scikit-learn's 8x8 handwritten digits, (1797, 64).
- :func:`sample_photo`: photographs bundled with scikit-image.
- :func:`make_toy_classes`: 2-D point clouds (blobs, spiral, moons, circles).
- :func:`synthetic_images`: CIFAR-shaped random images with learnable classes.

Downloaded once, then read from the cache (``data_dir()``):

- :func:`load_cifar10`: the binary version of CIFAR-10 (no pickle involved).
- :func:`load_mnist`: MNIST or Fashion-MNIST, IDX files.

Every download is checked against the publisher's MD5 checksum. Files are written
to a temporary name first and renamed only after the check, so a failed or
interrupted download leaves nothing behind.

Environment variables:

- ``COURSE_DATA_DIR``: cache folder (default: the user's cache folder,
  ``pooch.os_cache("deep-learning-course")``).
- ``COURSE_DATA_MIRROR``: base URL of a mirror laid out like the cache folder,
  i.e. ``<mirror>/cifar-10/cifar-10-binary.tar.gz``,
  ``<mirror>/mnist/train-images-idx3-ubyte.gz``,
  ``<mirror>/fashion-mnist/train-images-idx3-ubyte.gz``. Serving a filled cache
  folder (``python -m http.server`` inside it) makes a working mirror.

Dimension letters: N examples, D features, H, W height/width, C channels.
"""

from __future__ import annotations

import gzip
import os
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pooch

__all__ = [
    "CIFAR10_CLASSES",
    "FASHION_MNIST_CLASSES",
    "MNIST_CLASSES",
    "DatasetCorrupt",
    "DatasetUnavailable",
    "data_dir",
    "load_cifar10",
    "load_digits",
    "load_mnist",
    "make_toy_classes",
    "sample_photo",
    "synthetic_images",
    "train_val_test_split",
]

DATA_DIR_ENV_VAR = "COURSE_DATA_DIR"
MIRROR_ENV_VAR = "COURSE_DATA_MIRROR"

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES = tuple(str(d) for d in range(10))

# Publishers' URLs and MD5 checksums (https://www.cs.toronto.edu/~kriz/cifar.html;
# the MNIST and Fashion-MNIST checksums are the ones torchvision verifies).
_CIFAR10_ARCHIVE = "cifar-10-binary.tar.gz"
_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/" + _CIFAR10_ARCHIVE
_CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
_CIFAR10_FOLDER = "cifar-10"
_CIFAR10_MEMBER = "cifar-10-batches-bin/{}.bin"
_CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR10_RECORD = 1 + 3 * 32 * 32  # label byte, then the red, green and blue 32x32 planes

_MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
_MNIST_SOURCES = {
    "mnist": {
        "title": "MNIST",
        "folder": "mnist",
        "url": "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "md5": dict(
            zip(
                _MNIST_FILES,
                (
                    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    "d53e105ee54ea40749a09fcbcd1e9432",
                    "9fb629c4189551a2d022fa330f9573f3",
                    "ec29112dd5afa0611ce80d1b7f02629c",
                ),
                strict=True,
            )
        ),
    },
    "fashion": {
        "title": "Fashion-MNIST",
        "folder": "fashion-mnist",
        "url": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "md5": dict(
            zip(
                _MNIST_FILES,
                (
                    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    "25c81989df183df01b3e8a0aad5dffbe",
                    "bef4ecab320f06d8554ea6380940ec79",
                    "bb300cfdad3c16e7a12a480ee83cd310",
                ),
                strict=True,
            )
        ),
    },
}


class DatasetUnavailable(RuntimeError):
    """A data set could not be downloaded or read; the message says how to get it."""


class DatasetCorrupt(DatasetUnavailable, ValueError):
    """A downloaded file failed its checksum or is not in the expected format."""


# --------------------------------------------------------------------------- cache and download


def data_dir() -> Path:
    """Folder where downloaded data sets are kept.

    Returns:
    - the path in the environment variable COURSE_DATA_DIR if set, else the user's
      cache folder for this course (``pooch.os_cache("deep-learning-course")``).
    """
    env = os.environ.get(DATA_DIR_ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    return Path(pooch.os_cache("deep-learning-course"))


def _source_url(default_base: str, folder: str, fname: str, override: str | None) -> str:
    """URL of one file: explicit override, else the mirror, else the publisher."""
    if override:
        return override
    mirror = os.environ.get(MIRROR_ENV_VAR, "").strip()
    if mirror:
        return f"{mirror.rstrip('/')}/{folder}/{fname}"
    return default_base.rstrip("/") + "/" + fname


def _normalise_hash(known_hash: str) -> str:
    known_hash = known_hash.strip().lower()
    if ":" not in known_hash and len(known_hash) == 32:  # a bare MD5, as publishers list them
        return "md5:" + known_hash
    return known_hash


class _LazyProgress:
    """A tqdm bar that appears only when a download really starts (not for cached files)."""

    def __init__(self, desc: str) -> None:
        self.desc = desc
        self._bar = None

    @property
    def total(self):
        return None if self._bar is None else self._bar.total

    @total.setter
    def total(self, value) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=value or None, desc=self.desc, unit="B", unit_scale=True, leave=True)

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def reset(self) -> None:
        if self._bar is not None:
            self._bar.reset()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _unavailable_message(title: str, url: str, target: Path, reason: str) -> str:
    return (
        f"{title} is not available: {reason}\n"
        f"  URL: {url}\n"
        f"  cache folder: {target.parent}\n"
        f"To fix it, either connect to the internet and run this cell again, or download {url} "
        f"on another machine and copy the file to {target} (set {DATA_DIR_ENV_VAR} to use another "
        f"cache folder, or {MIRROR_ENV_VAR} to download from a mirror).\n"
        f"To go on without it, use the offline data sets: load_digits() (8x8 digits bundled with "
        f"scikit-learn) or synthetic_images() (random images with learnable classes)."
    )


def _fetch(title: str, url: str, target: Path, known_hash: str, progressbar: bool) -> Path:
    """Download `url` to `target` unless a file with the right checksum is already there.

    Inputs:
    - title: the data set's name, for messages.
    - url: where to download from.
    - target: path of the file in the cache.
    - known_hash: "md5:<hex>", "sha256:<hex>" or a bare MD5.
    - progressbar: show a tqdm bar while downloading.

    Returns:
    - the path of the verified file.
    """
    progress = _LazyProgress(target.name) if progressbar else False
    downloader = pooch.HTTPDownloader(progressbar=progress)
    try:
        path = pooch.retrieve(
            url,
            known_hash=_normalise_hash(known_hash),
            fname=target.name,
            path=target.parent,
            downloader=downloader,
        )
    except ValueError as err:  # pooch's checksum mismatch
        raise DatasetCorrupt(
            f"{title}: the file downloaded from {url} does not match its known checksum, so it was "
            f"discarded ({err}). The download may have been cut short or the mirror serves a "
            f"different file: try again, or check {MIRROR_ENV_VAR} / the url argument."
        ) from err
    except OSError as err:  # requests' errors are OSErrors too: no network, refused, HTTP 404
        raise DatasetUnavailable(
            _unavailable_message(title, url, target, f"downloading failed ({type(err).__name__}: {err}).")
        ) from err
    finally:
        if progress:
            progress.close()
    return Path(path)


def _corrupt(title: str, path: Path, problem: str) -> DatasetCorrupt:
    return DatasetCorrupt(
        f"{title}: {path} is not a valid data file ({problem}). Delete it and run this cell "
        f"again to download a fresh copy."
    )


# --------------------------------------------------------------------------- CIFAR-10


def _parse_cifar_batch(raw: bytes, name: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Records of 1 label byte + 3072 pixel bytes (C, H, W) -> images (N, H, W, C), labels (N,)."""
    if len(raw) % _CIFAR10_RECORD:
        raise _corrupt(
            "CIFAR-10",
            path,
            f"{name} holds {len(raw)} bytes, not a multiple of the {_CIFAR10_RECORD}-byte record size",
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, _CIFAR10_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.size and labels.max() >= len(CIFAR10_CLASSES):
        raise _corrupt("CIFAR-10", path, f"{name} has label {labels.max()}, expected 0..9")
    images = records[:, 1:].reshape(-1, 3, 32, 32)  # (N, C, H, W)
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1)), labels  # (N, H, W, C)


def _read_cifar_archive(
    path: Path, num_train: int | None, num_test: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the first num_train training and num_test test records (None: all) in one pass."""
    names = {_CIFAR10_MEMBER.format(n): n for n in (*_CIFAR10_TRAIN_BATCHES, "test_batch")}
    train: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    test = None
    train_left = num_train
    try:
        with tarfile.open(path, mode="r|gz") as tar:  # a stream: one pass, nothing extracted
            for member in tar:
                name = names.get(member.name)
                if name is None or not member.isfile() or (name != "test_batch" and train_left == 0):
                    continue
                limit = num_test if name == "test_batch" else train_left
                stream = tar.extractfile(member)
                raw = stream.read() if limit is None else stream.read(limit * _CIFAR10_RECORD)
                batch = _parse_cifar_batch(raw, member.name, path)
                if name == "test_batch":
                    test = batch
                else:
                    train[name] = batch
                    if train_left is not None:
                        train_left -= len(batch[1])
                if test is not None and (train_left == 0 or len(train) == len(_CIFAR10_TRAIN_BATCHES)):
                    break
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise _corrupt("CIFAR-10", path, f"cannot read the archive: {err}") from err
    missing = [] if test is not None else [_CIFAR10_MEMBER.format("test_batch")]
    if train_left != 0:
        missing += [_CIFAR10_MEMBER.format(n) for n in _CIFAR10_TRAIN_BATCHES if n not in train]
    if missing:
        raise _corrupt("CIFAR-10", path, f"the archive lacks {', '.join(missing)}")
    ordered = [train[n] for n in _CIFAR10_TRAIN_BATCHES if n in train]
    X_train = np.concatenate([images for images, _ in ordered])[:num_train]
    y_train = np.concatenate([labels for _, labels in ordered])[:num_train]
    return X_train, y_train, test[0], test[1]


def _check_count(name: str, value: int | None, maximum: int) -> None:
    if value is not None and not (isinstance(value, (int, np.integer)) and 0 < value <= maximum):
        raise ValueError(f"{name} must be an int in 1..{maximum} or None (all), got {value!r}.")


def load_cifar10(
    root: str | os.PathLike | None = None,
    *,
    num_train: int | None = None,
    num_test: int | None = None,
    url: str | None = None,
    known_hash: str | None = None,
    progressbar: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load CIFAR-10, downloading the binary archive (162 MB) on first use.

    Inputs:
    - root: folder for the archive; default ``data_dir() / "cifar-10"``.
    - num_train: keep only the first num_train training images (default all 50000).
    - num_test: keep only the first num_test test images (default all 10000).
    - url: where to download cifar-10-binary.tar.gz from; default the publisher
      (or ``$COURSE_DATA_MIRROR/cifar-10/cifar-10-binary.tar.gz``).
    - known_hash: checksum of the archive, "md5:<hex>" or "sha256:<hex>"; default the
      publisher's MD5.
    - progressbar: show a progress bar while downloading.

    Returns a tuple of:
    - X_train: uint8 images, shape (N_train, 32, 32, 3), values 0..255
    - y_train: int64 labels in 0..9, shape (N_train,); names in CIFAR10_CLASSES
    - X_test: uint8 images, shape (N_test, 32, 32, 3)
    - y_test: int64 labels, shape (N_test,)

    Raises DatasetUnavailable when offline (the message says how to place the file by
    hand) and DatasetCorrupt when the checksum or the file format is wrong.
    """
    _check_count("num_train", num_train, 50000)
    _check_count("num_test", num_test, 10000)
    folder = Path(root).expanduser() if root is not None else data_dir() / _CIFAR10_FOLDER
    source = _source_url(_CIFAR10_URL.rsplit("/", 1)[0], _CIFAR10_FOLDER, _CIFAR10_ARCHIVE, url)
    path = _fetch("CIFAR-10", source, folder / _CIFAR10_ARCHIVE, known_hash or _CIFAR10_MD5, progressbar)
    return _read_cifar_archive(path, num_train, num_test)


# --------------------------------------------------------------------------- MNIST


def _read_idx(path: Path, title: str, ndim: int) -> np.ndarray:
    """Parse a gzipped IDX file of unsigned bytes with `ndim` dimensions."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise _corrupt(title, path, f"cannot decompress it: {err}") from err
    header = 4 + 4 * ndim
    expected_magic = 0x0800 + ndim  # two zero bytes, type 0x08 (unsigned byte), number of dimensions
    if len(data) < header:
        raise _corrupt(title, path, f"only {len(data)} bytes, shorter than the IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise _corrupt(
            title,
            path,
            f"magic number {magic:#010x}, expected {expected_magic:#010x} "
            f"(unsigned bytes, {ndim} dimension(s))",
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) - header != int(np.prod(shape)):
        raise _corrupt(
            title,
            path,
            f"header says shape {shape} ({int(np.prod(shape))} bytes) but {len(data) - header} bytes follow",
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist(
    kind: str = "mnist",
    *,
    url: str | None = None,
    known_hashes: dict[str, str] | None = None,
    progressbar: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load MNIST digits or Fashion-MNIST, downloading the four IDX files (~11-30 MB) on first use.

    Inputs:
    - kind: "mnist" (digits 0..9) or "fashion" (clothes; names in FASHION_MNIST_CLASSES).
    - url: base URL (a folder) holding the four .gz files; default the publisher
      (or ``$COURSE_DATA_MIRROR/mnist/`` resp. ``.../fashion-mnist/``).
    - known_hashes: file name -> checksum ("md5:<hex>", "sha256:<hex>"); files left out
      use the publisher's MD5.
    - progressbar: show a progress bar while downloading.

    Returns a tuple of:
    - X_train: uint8 images, shape (60000, 28, 28), values 0..255
    - y_train: int64 labels in 0..9, shape (60000,)
    - X_test: uint8 images, shape (10000, 28, 28)
    - y_test: int64 labels, shape (10000,)

    Raises DatasetUnavailable when offline and DatasetCorrupt on a checksum mismatch or
    a malformed file.
    """
    if kind not in _MNIST_SOURCES:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(map(repr, _MNIST_SOURCES))}.")
    source = _MNIST_SOURCES[kind]
    title, folder = source["title"], source["folder"]
    hashes = {**source["md5"], **(known_hashes or {})}
    unknown = set(hashes) - set(_MNIST_FILES)
    if unknown:
        raise ValueError(
            f"known_hashes has unknown file name(s) {sorted(unknown)}; "
            f"the files are {', '.join(_MNIST_FILES)}."
        )
    base = url.rstrip("/") + "/" if url else None
    arrays = []
    for fname in _MNIST_FILES:
        file_url = _source_url(source["url"], folder, fname, base + fname if base else None)
        path = _fetch(title, file_url, data_dir() / folder / fname, hashes[fname], progressbar)
        arrays.append(_read_idx(path, title, ndim=3 if "images" in fname else 1))
    X_train, y_train, X_test, y_test = arrays
    for split, X, y in (("train", X_train, y_train), ("test", X_test, y_test)):
        if len(X) != len(y):
            raise _corrupt(title, data_dir() / folder, f"{len(X)} {split} images but {len(y)} {split} labels")
    return X_train, y_train.astype(np.int64), X_test, y_test.astype(np.int64)


# --------------------------------------------------------------------------- offline data


def load_digits(flatten: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's handwritten digits (bundled with it, so this works offline).

    Inputs:
    - flatten: return each 8x8 image as a row of 64 features.

    Returns a tuple of:
    - X: float64, values 0..16, shape (1797, 64), or (1797, 8, 8) when flatten=False
    - y: int64 labels in 0..9, shape (1797,)
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    X, y = sklearn_load_digits(return_X_y=True)
    X = X.astype(np.float64)
    if not flatten:
        X = X.reshape(-1, 8, 8)
    return X, y.astype(np.int64)


def _random_state(rng: np.random.Generator | int | None) -> int | None:
    """An int seed for scikit-learn from a Generator, an int, or None (numpy's global RNG)."""
    if rng is None or isinstance(rng, (int, np.integer)):
        return rng
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(2**31 - 1))
    raise TypeError(f"rng must be a numpy Generator, an int or None, got {type(rng).__name__}.")


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:  # follows seed_everything through numpy's global generator
        return np.random.default_rng(np.random.randint(2**31 - 1))
    return np.random.default_rng(rng)


def train_val_test_split(
    X: np.ndarray,
    y: np.ndarray,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle and split into training, validation and test sets, stratified by class.

    Inputs:
    - X: data, shape (N, ...)
    - y: integer labels, shape (N,)
    - val_fraction: fraction of all N examples for validation, in [0, 1).
    - test_fraction: fraction of all N examples for testing, in [0, 1).
    - rng: numpy Generator or int seed; None uses numpy's global RNG (seeded by
      seed_everything). The same seed gives the same split.

    Returns a tuple of:
    - X_train, y_train: shapes (N_train, ...), (N_train,)
    - X_val, y_val: shapes (N_val, ...), (N_val,)
    - X_test, y_test: shapes (N_test, ...), (N_test,)
    each class keeping (up to rounding) its share of N in every split.
    """
    from sklearn.model_selection import train_test_split

    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} examples but y has {len(y)} labels; they must match.")
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= frac < 1:
            raise ValueError(f"{name} must be in [0, 1), got {frac}.")
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves no "
            f"training data; make their sum smaller than 1."
        )
    seed = _random_state(rng)
    if seed is None:
        seed = int(np.random.randint(2**31 - 1))

    def split(X, y, fraction, seed):
        if fraction == 0:
            return X, y, X[:0], y[:0]
        X_a, X_b, y_a, y_b = train_test_split(X, y, test_size=fraction, stratify=y, random_state=seed)
        return X_a, y_a, X_b, y_b

    X_rest, y_rest, X_test, y_test = split(X, y, test_fraction, seed)
    X_train, y_train, X_val, y_val = split(X_rest, y_rest, val_fraction / (1 - test_fraction), seed + 1)
    return X_train, y_train, X_val, y_val, X_test, y_test


_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "cell",
    "checkerboard",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "text",
)


def sample_photo(name: str = "astronaut") -> np.ndarray:
    """A photograph bundled with scikit-image (works offline).

    Inputs:
    - name: one of astronaut, brick, camera, cat, cell, checkerboard, chelsea, clock,
      coffee, coins, colorwheel, grass, gravel, horse, hubble_deep_field,
      immunohistochemistry, logo, microaneurysms, moon, page, retina, rocket, text.

    Returns:
    - image: uint8, shape (H, W, 3); grey images are repeated over the 3 channels.
    """
    if name not in _PHOTOS:
        raise ValueError(f"unknown photo {name!r}; choose one of {', '.join(_PHOTOS)}.")
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.dtype == bool:  # the horse silhouette
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.shape[2] == 4:  # RGBA logo: composite on white
        alpha = image[:, :, 3:].astype(np.float64) / 255
        image = np.round(image[:, :, :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(image, dtype=np.uint8)


_TOY_KINDS = ("blobs", "spiral", "moons", "circles")
_TOY_NOISE = {"blobs": 1.0, "spiral": 0.2, "moons": 0.1, "circles": 0.05}


def make_toy_classes(
    n_per_class: int = 100,
    num_classes: int = 3,
    kind: str = "blobs",
    rng: np.random.Generator | int | None = None,
    noise: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-dimensional classification data to look at and to plot decision boundaries on.

    Inputs:
    - n_per_class: points per class.
    - num_classes: number of classes C; "moons" and "circles" have exactly 2.
    - kind: "blobs" (Gaussian clusters), "spiral" (C interleaved arms, not linearly
      separable), "moons" or "circles".
    - rng: numpy Generator or int seed; None uses numpy's global RNG.
    - noise: spread of the points; default 1.0 (blobs, a standard deviation),
      0.2 (spiral), 0.1 (moons), 0.05 (circles).

    Returns a tuple of:
    - X: float64 points, shape (N, 2) with N = n_per_class * C
    - y: int64 labels in 0..C-1, shape (N,), sorted by class
    """
    from sklearn import datasets

    if kind not in _TOY_KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(_TOY_KINDS)}.")
    if kind in ("moons", "circles") and num_classes != 2:
        raise ValueError(
            f"kind={kind!r} has exactly 2 classes; call make_toy_classes(kind={kind!r}, "
            f"num_classes=2) or use kind='blobs' or 'spiral' for {num_classes}."
        )
    if n_per_class < 1 or num_classes < 1:
        raise ValueError(f"n_per_class and num_classes must be positive, got {n_per_class}, {num_classes}.")
    noise = _TOY_NOISE[kind] if noise is None else float(noise)
    seed = _random_state(rng) if rng is not None else int(np.random.randint(2**31 - 1))
    if kind == "spiral":
        # CS231n's spiral: class k is an arm at angle offset 4k, radius growing from 0 to 1.
        gen = np.random.default_rng(seed)
        radius = np.tile(np.linspace(0.0, 1.0, n_per_class), num_classes)  # (N,)
        y = np.repeat(np.arange(num_classes), n_per_class)  # (N,)
        theta = np.tile(np.linspace(0.0, 4.0, n_per_class), num_classes) + 4.0 * y
        theta = theta + gen.normal(scale=noise, size=theta.shape)
        X = np.c_[radius * np.sin(theta), radius * np.cos(theta)]  # (N, 2)
    elif kind == "blobs":
        X, y = datasets.make_blobs(
            n_samples=[n_per_class] * num_classes,
            n_features=2,
            cluster_std=noise,
            random_state=seed,
            centers=_blob_centres(num_classes, seed),
        )
    elif kind == "moons":
        X, y = datasets.make_moons(n_samples=(n_per_class, n_per_class), noise=noise, random_state=seed)
    else:
        X, y = datasets.make_circles(
            n_samples=(n_per_class, n_per_class), noise=noise, factor=0.5, random_state=seed
        )
    order = np.argsort(y, kind="stable")
    return np.asarray(X, dtype=np.float64)[order], np.asarray(y, dtype=np.int64)[order]


def _blob_centres(num_classes: int, seed: int) -> np.ndarray:
    """Centres spread on a circle (radius grows with C) so blobs overlap only a little."""
    angle = (
        np.random.default_rng(seed).uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(num_classes) / num_classes
    )
    radius = 3.0 + 0.5 * num_classes
    return np.c_[radius * np.cos(angle), radius * np.sin(angle)]  # (C, 2)


def synthetic_images(
    n_per_class: int = 100,
    num_classes: int = 10,
    size: int = 32,
    rng: np.random.Generator | int | None = None,
    noise: float = 0.15,
) -> tuple[np.ndarray, np.ndarray]:
    """Random colour images whose class is learnable: an offline stand-in for CIFAR-10.

    Each class has its own colour and stripe orientation/frequency; every image has a
    random phase, random brightness and pixel noise on top.

    Inputs:
    - n_per_class: images per class.
    - num_classes: number of classes C.
    - size: height and width H = W of each image.
    - rng: numpy Generator or int seed; None uses numpy's global RNG.
    - noise: standard deviation of the pixel noise, as a fraction of the range.

    Returns a tuple of:
    - X: uint8 images, shape (N, H, W, 3) with N = n_per_class * C, shuffled
    - y: int64 labels in 0..C-1, shape (N,)
    """
    gen = _generator(rng)
    # Class prototypes are fixed (seed 0) so train and test sets drawn separately agree.
    proto = np.random.default_rng(0)
    colours = proto.uniform(0.2, 1.0, size=(num_classes, 3))  # (C, 3)
    angles = np.pi * np.arange(num_classes) / num_classes + proto.uniform(0, 0.1, num_classes)
    freqs = proto.uniform(1.5, 4.0, size=num_classes) * 2 * np.pi / size  # (C,)

    y = gen.permutation(np.repeat(np.arange(num_classes), n_per_class))  # (N,)
    rows, cols = np.mgrid[0:size, 0:size]  # (H, W) each
    direction = np.cos(angles)[y, None, None] * cols + np.sin(angles)[y, None, None] * rows  # (N, H, W)
    phase = gen.uniform(0, 2 * np.pi, size=(len(y), 1, 1))
    stripes = 0.5 + 0.5 * np.sin(freqs[y, None, None] * direction + phase)  # (N, H, W)
    brightness = gen.uniform(0.7, 1.0, size=(len(y), 1, 1, 1))
    images = brightness * stripes[..., None] * colours[y, None, None, :]  # (N, H, W, 3)
    images = images + gen.normal(scale=noise, size=images.shape)
    return np.round(np.clip(images, 0, 1) * 255).astype(np.uint8), y.astype(np.int64)
