"""Tests for course_utils.data: offline data sets, and downloads from a real local HTTP server
serving small files in the publishers' formats."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import socket
import tarfile
import threading
from pathlib import Path

import numpy as np
import pooch
import pytest

from course_utils import data
from course_utils.data import (
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    DatasetCorrupt,
    DatasetUnavailable,
    data_dir,
    load_cifar10,
    load_digits,
    load_mnist,
    make_toy_classes,
    sample_photo,
    synthetic_images,
    train_val_test_split,
)

# ----------------------------------------------------------------------------- a local mirror


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(tmp_path):
    """Serve tmp_path/mirror over HTTP on 127.0.0.1; yields (root folder, base URL, request log)."""
    root = tmp_path / "mirror"
    root.mkdir()
    requests: list[str] = []
    handler = functools.partial(
        type("Handler", (_QuietHandler,), {"requests": requests}), directory=str(root)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets an empty cache folder and no mirror."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("COURSE_DATA_DIR", str(folder))
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    return folder


@pytest.fixture
def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens here any more


def _md5(path: Path) -> str:
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def _files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _cifar_records(rng, n):
    """n records: label byte + 3072 bytes (C, H, W); returns bytes, images (n, H, W, C), labels."""
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    chw = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    raw = np.concatenate([labels[:, None], chw.reshape(n, -1)], axis=1).tobytes()
    return raw, chw.transpose(0, 2, 3, 1), labels.astype(np.int64)


def _add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


@pytest.fixture
def cifar_archive(mirror):
    """A cifar-10-binary.tar.gz with 3 records per training batch and 4 test records."""
    root, base, requests = mirror
    rng = np.random.default_rng(0)
    folder = root / "cifar-10"
    folder.mkdir()
    path = folder / "cifar-10-binary.tar.gz"
    train_images, train_labels = [], []
    with tarfile.open(path, "w:gz") as tar:
        for i in range(1, 6):
            raw, images, labels = _cifar_records(rng, 3)
            _add_member(tar, f"cifar-10-batches-bin/data_batch_{i}.bin", raw)
            train_images.append(images)
            train_labels.append(labels)
        _add_member(tar, "cifar-10-batches-bin/batches.meta.txt", "\n".join(CIFAR10_CLASSES).encode())
        raw, test_images, test_labels = _cifar_records(rng, 4)
        _add_member(tar, "cifar-10-batches-bin/test_batch.bin", raw)
    expected = (np.concatenate(train_images), np.concatenate(train_labels), test_images, test_labels)
    return path, base, requests, expected


def _idx(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = 0x0800 + array.ndim if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_files(mirror):
    """The four MNIST IDX files with 5 training and 3 test images, under <mirror>/mnist/."""
    root, base, requests = mirror
    rng = np.random.default_rng(1)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, size=(5, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, size=5),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, size=(3, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, size=3),
    }
    folder = root / "mnist"
    folder.mkdir()
    hashes = {}
    for name, array in arrays.items():
        (folder / name).write_bytes(_idx(array))
        hashes[name] = _md5(folder / name)
    return folder, base, requests, arrays, hashes


# ----------------------------------------------------------------------------- CIFAR-10


def test_cifar10_download_parse_and_cache(cifar_archive, cache):
    path, base, requests, (X_train, y_train, X_test, y_test) = cifar_archive
    url = f"{base}/cifar-10/cifar-10-binary.tar.gz"
    out = load_cifar10(url=url, known_hash=_md5(path), progressbar=True)
    assert [a.dtype for a in out] == [np.uint8, np.int64, np.uint8, np.int64]
    assert out[0].shape == (15, 32, 32, 3) and out[2].shape == (4, 32, 32, 3)
    for got, want in zip(out, (X_train, y_train, X_test, y_test), strict=True):
        np.testing.assert_array_equal(got, want)
    assert requests == ["/cifar-10/cifar-10-binary.tar.gz"]
    assert _files_in(cache) == [cache / "cifar-10" / "cifar-10-binary.tar.gz"]

    again = load_cifar10(url=url, known_hash=_md5(path), num_train=4, num_test=2)
    assert len(requests) == 1  # read from the cache, no new request
    np.testing.assert_array_equal(again[0], X_train[:4])  # crosses from batch 1 into batch 2
    np.testing.assert_array_equal(again[1], y_train[:4])
    np.testing.assert_array_equal(again[2], X_test[:2])


def test_cifar10_mirror_env_var(cifar_archive, monkeypatch, tmp_path):
    path, base, requests, expected = cifar_archive
    monkeypatch.setenv("COURSE_DATA_MIRROR", base + "/")
    out = load_cifar10(root=tmp_path / "elsewhere", known_hash=_md5(path), progressbar=False)
    np.testing.assert_array_equal(out[3], expected[3])
    assert requests == ["/cifar-10/cifar-10-binary.tar.gz"]
    assert (tmp_path / "elsewhere" / "cifar-10-binary.tar.gz").is_file()


def test_cifar10_hash_mismatch_leaves_nothing(cifar_archive, cache):
    _, base, requests, _ = cifar_archive
    with pytest.raises(DatasetCorrupt, match="checksum") as info:
        load_cifar10(
            url=f"{base}/cifar-10/cifar-10-binary.tar.gz", known_hash="md5:" + "0" * 32, progressbar=False
        )
    assert isinstance(info.value, ValueError) and isinstance(info.value, DatasetUnavailable)
    assert requests  # it did download
    assert _files_in(cache) == []


def test_cifar10_default_checksum_is_the_publishers(cifar_archive, cache):
    _, base, _, _ = cifar_archive
    with pytest.raises(DatasetCorrupt, match="c32a1d4ab5d03f1284b67883e8d87530"):
        load_cifar10(url=f"{base}/cifar-10/cifar-10-binary.tar.gz", progressbar=False)
    assert _files_in(cache) == []


def test_cifar10_offline_gives_a_helpful_error(closed_port_url, cache):
    url = f"{closed_port_url}/cifar-10-binary.tar.gz"
    with pytest.raises(DatasetUnavailable) as info:
        load_cifar10(url=url, progressbar=False)
    message = str(info.value)
    for part in (
        "CIFAR-10",
        url,
        str(cache / "cifar-10"),
        "copy the file",
        "load_digits()",
        "synthetic_images",
    ):
        assert part in message
    assert _files_in(cache) == []


def test_cifar10_file_placed_by_hand_is_used(cifar_archive, cache, closed_port_url):
    path, _, _, expected = cifar_archive
    (cache / "cifar-10").mkdir(parents=True)
    (cache / "cifar-10" / "cifar-10-binary.tar.gz").write_bytes(path.read_bytes())
    out = load_cifar10(url=closed_port_url + "/x.tar.gz", known_hash=_md5(path))
    np.testing.assert_array_equal(out[0], expected[0])


def test_cifar10_truncated_record_is_reported(mirror):
    root, base, _ = mirror
    path = root / "bad.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            _add_member(tar, f"cifar-10-batches-bin/{name}.bin", b"\x00" * 100)
    with pytest.raises(DatasetCorrupt, match="multiple of the 3073-byte record"):
        load_cifar10(url=f"{base}/bad.tar.gz", known_hash=_md5(path), progressbar=False)


@pytest.mark.parametrize("kwargs", [{"num_train": 0}, {"num_train": 50001}, {"num_test": 2.5}])
def test_cifar10_rejects_bad_counts(kwargs):
    with pytest.raises(ValueError, match="num_t"):
        load_cifar10(**kwargs)


# ----------------------------------------------------------------------------- MNIST


def test_mnist_download_parse_and_cache(mnist_files, monkeypatch, cache):
    _, base, requests, arrays, hashes = mnist_files
    monkeypatch.setenv("COURSE_DATA_MIRROR", base)
    out = load_mnist("mnist", known_hashes=hashes, progressbar=False)
    expected = list(arrays.values())
    assert [a.dtype for a in out] == [np.uint8, np.int64, np.uint8, np.int64]
    for got, want in zip(out, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert sorted(requests) == sorted(f"/mnist/{name}" for name in arrays)
    load_mnist("mnist", known_hashes=hashes, progressbar=False)
    assert len(requests) == 4  # all four from the cache
    assert len(_files_in(cache / "mnist")) == 4


def test_fashion_mnist_uses_its_own_folder(mnist_files, cache):
    folder, base, requests, arrays, hashes = mnist_files
    out = load_mnist("fashion", url=f"{base}/mnist", known_hashes=hashes, progressbar=False)
    np.testing.assert_array_equal(out[3], arrays["t10k-labels-idx1-ubyte.gz"])
    assert len(_files_in(cache / "fashion-mnist")) == 4
    assert len(FASHION_MNIST_CLASSES) == 10


def test_mnist_bad_magic_number_is_reported(mnist_files):
    folder, base, _, _, hashes = mnist_files
    bad = folder / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(_idx(np.zeros(5), magic=0x0803))
    hashes = {**hashes, bad.name: _md5(bad)}
    with pytest.raises(DatasetCorrupt, match="magic number"):
        load_mnist(url=f"{base}/mnist/", known_hashes=hashes, progressbar=False)


def test_mnist_truncated_file_is_reported(mnist_files):
    folder, base, _, _, hashes = mnist_files
    bad = folder / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(gzip.decompress(bad.read_bytes())[:-10]))
    hashes = {**hashes, bad.name: _md5(bad)}
    with pytest.raises(DatasetCorrupt, match="bytes follow"):
        load_mnist(url=f"{base}/mnist/", known_hashes=hashes, progressbar=False)


def test_mnist_offline_gives_a_helpful_error(closed_port_url, cache):
    with pytest.raises(DatasetUnavailable, match="load_digits") as info:
        load_mnist("fashion", url=closed_port_url, progressbar=False)
    assert "Fashion-MNIST" in str(info.value)
    assert _files_in(cache) == []


def test_mnist_rejects_unknown_kind_and_file_names():
    with pytest.raises(ValueError, match="'mnist', 'fashion'"):
        load_mnist("kmnist")
    with pytest.raises(ValueError, match="unknown file name"):
        load_mnist(known_hashes={"train.gz": "md5:00"})


# ----------------------------------------------------------------------------- offline data


def test_data_dir(monkeypatch, tmp_path):
    assert data_dir() == tmp_path / "cache"
    monkeypatch.delenv("COURSE_DATA_DIR")
    assert data_dir() == Path(pooch.os_cache("deep-learning-course"))


def test_load_digits():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64 and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16 and set(y) == set(range(10))
    images, _ = load_digits(flatten=False)
    np.testing.assert_array_equal(images.reshape(-1, 64), X)


def test_split_is_stratified_disjoint_and_repeatable():
    X = np.arange(1000)
    y = np.repeat(np.arange(4), [100, 200, 300, 400])
    splits = train_val_test_split(X, y, 0.2, 0.1, rng=np.random.default_rng(0))
    X_train, y_train, X_val, y_val, X_test, y_test = splits
    assert (len(X_train), len(X_val), len(X_test)) == (700, 200, 100)
    assert sorted(np.concatenate([X_train, X_val, X_test]).tolist()) == X.tolist()
    for Xs, ys in ((X_train, y_train), (X_val, y_val), (X_test, y_test)):
        np.testing.assert_array_equal(y[Xs], ys)
        np.testing.assert_allclose(np.bincount(ys) / len(ys), [0.1, 0.2, 0.3, 0.4], atol=0.01)
    assert not np.array_equal(X_train[:50], np.sort(X_train)[:50])  # shuffled
    again = train_val_test_split(X, y, 0.2, 0.1, rng=np.random.default_rng(0))
    assert all(np.array_equal(a, b) for a, b in zip(splits, again, strict=True))
    np.random.seed(3)
    first = train_val_test_split(X, y)
    np.random.seed(3)
    assert np.array_equal(first[0], train_val_test_split(X, y)[0])  # None follows numpy's global seed


@pytest.mark.parametrize(("val", "test"), [(0.5, 0.5), (-0.1, 0.2), (0.2, 1.0)])
def test_split_rejects_bad_fractions(val, test):
    with pytest.raises(ValueError, match="fraction"):
        train_val_test_split(np.zeros(10), np.zeros(10), val, test)


@pytest.mark.parametrize("name", data._PHOTOS)
def test_sample_photo(name):
    image = sample_photo(name)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


def test_sample_photo_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="astronaut.*chelsea"):
        sample_photo("mona lisa")


@pytest.mark.parametrize(("kind", "num_classes"), [("blobs", 4), ("spiral", 3), ("moons", 2), ("circles", 2)])
def test_make_toy_classes(kind, num_classes):
    X, y = make_toy_classes(30, num_classes, kind, rng=0)
    assert X.shape == (30 * num_classes, 2) and X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [30] * num_classes)
    X2, _ = make_toy_classes(30, num_classes, kind, rng=0)
    np.testing.assert_array_equal(X, X2)


def test_make_toy_classes_rejects_bad_options():
    with pytest.raises(ValueError, match="choose one of blobs, spiral"):
        make_toy_classes(kind="swirl")
    with pytest.raises(ValueError, match="num_classes=2"):
        make_toy_classes(kind="moons")


def test_synthetic_images_are_learnable():
    from sklearn.linear_model import LogisticRegression

    X, y = synthetic_images(40, num_classes=5, size=16, rng=0)
    assert X.shape == (200, 16, 16, 3) and X.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y), [40] * 5)
    X_test, y_test = synthetic_images(20, num_classes=5, size=16, rng=1)
    features = lambda images: np.abs(np.fft.fft2(images / 255.0, axes=(1, 2))).reshape(len(images), -1)  # noqa: E731
    model = LogisticRegression(max_iter=2000).fit(features(X), y)
    assert model.score(features(X_test), y_test) > 0.8


def test_missing_file_on_the_server_is_unavailable(mirror, cache):
    _, base, requests = mirror
    with pytest.raises(DatasetUnavailable, match="404") as info:
        load_cifar10(url=f"{base}/nothing-here.tar.gz", progressbar=False)
    assert not isinstance(info.value, DatasetCorrupt)
    assert requests == ["/nothing-here.tar.gz"]
    assert _files_in(cache) == []
