"""Data and weights: bundled digits, the .npz format, and every download against a loopback
HTTP server, including truncated and corrupted files that must be rejected, and the workflow's
downloads retried and then failing behind a proxy that refuses them."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import os
import pickle
import struct
import tarfile
import threading
from collections import Counter
from collections.abc import Iterator

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

from imprint.fms import data
from imprint.fms.backbones import download_weights
from imprint.fms.data import digits, imagenet, load_images, save_images, torchvision_dataset
from tests.workflow_runs import copy_workflow, snakemake


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _serving(handler: type[_Quiet]) -> Iterator[str]:
    """``handler`` answering on 127.0.0.1 from a thread while the block runs; yields its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture
def http_files():
    """Files (name -> bytes) served on 127.0.0.1, 404 for others; yields (files, base URL)."""
    files: dict[str, bytes] = {}

    class Handler(_Quiet):
        def do_GET(self):
            body = files.get(self.path.rsplit("/", 1)[-1])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

    with _serving(Handler) as url:
        yield files, url


def _damage(body: bytes, how: str) -> bytes:
    return body[: len(body) // 2] if how == "truncate" else body[:-1] + bytes([body[-1] ^ 0xFF])


# SHA-256 of each split's images and int64 labels, as the split was first made: a changed split
# (another seed, order or library version) changes every result of the demo.
DIGITS_SPLITS = {
    "train": "87c8eeb13d6177992760416a722e00b01176dbe7825b6b8f49621647844035ef",
    "test": "815558a276c0e1d60219115c594998ab54a9db212cae555802d3156d28f39890",
}


def test_digits_split_is_stratified_and_fixed():
    train_x, train_y = digits("train")
    _, test_y = digits("test")
    assert train_x.dtype == np.uint8 and train_x.shape[1:] == (8, 8)
    assert len(train_y) + len(test_y) == 1797
    assert np.bincount(test_y).min() >= 50
    for split, digest in DIGITS_SPLITS.items():
        images, labels = digits(split)
        content = images.tobytes() + labels.astype(np.int64).tobytes()
        assert hashlib.sha256(content).hexdigest() == digest, split


def test_npz_round_trip_and_checks(tmp_path):
    images = np.zeros((3, 4, 4), np.uint8)
    save_images(tmp_path / "a.npz", images, [1, 2, 3])
    loaded, labels = load_images(tmp_path / "a.npz")
    assert loaded.shape == (3, 4, 4, 1) and labels.tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="uint8"):
        save_images(tmp_path / "b.npz", images.astype(np.float32), [1, 2, 3])
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        save_images(tmp_path / "b.npz", images, [1, 2])


def _idx(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I" + "I" * array.ndim, magic, *array.shape) + array.tobytes()


@pytest.fixture
def mnist(http_files, monkeypatch):
    files, url = http_files
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(_idx(images, 2051))
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(_idx(labels, 2049))
    checksums = [(name, hashlib.md5(body).hexdigest()) for name, body in files.items()]
    monkeypatch.setattr(tvd.MNIST, "mirrors", [url + "/"])
    monkeypatch.setattr(tvd.MNIST, "resources", checksums)
    return files


def test_torchvision_download_decodes_a_served_dataset(tmp_path, mnist):
    images, labels = torchvision_dataset("mnist", "train", tmp_path / "root")
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (12,)


@pytest.mark.parametrize("how", ["truncate", "corrupt"])
def test_a_damaged_torchvision_download_is_rejected(tmp_path, mnist, how):
    name = "train-images-idx3-ubyte.gz"
    mnist[name] = _damage(mnist[name], how)
    with pytest.raises(RuntimeError, match=r"downloading mnist \(train\) from http://127\.0\.0\.1"):
        torchvision_dataset("mnist", "train", tmp_path / "root")


def _pickled(entry: dict) -> bytes:
    payload = io.BytesIO()
    pickle.dump(entry, payload)
    return payload.getvalue()


@pytest.fixture
def cifar100(http_files, monkeypatch):
    """CIFAR-100's archive as torchvision reads it (python pickles of 3072-byte rows and fine
    labels, a meta file of class names), with its MD5 sums; yields (files, train images, train
    labels)."""
    files, url = http_files
    rng = np.random.default_rng(1)
    members, images = {}, {}
    for split, n in (("train", 7), ("test", 3)):
        images[split] = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        rows = images[split].transpose(0, 3, 1, 2).reshape(n, -1)  # channel planes, as CIFAR
        labels = (np.arange(n) * 37 % 100).tolist()
        members[split] = _pickled({"data": rows, "fine_labels": labels, "coarse_labels": labels})
    members["meta"] = _pickled({"fine_label_names": [f"class{i}" for i in range(100)]})
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    files["cifar-100-python.tar.gz"] = archive.getvalue()
    md5 = {name: hashlib.md5(body).hexdigest() for name, body in members.items()}
    monkeypatch.setattr(tvd.CIFAR100, "url", f"{url}/cifar-100-python.tar.gz")
    monkeypatch.setattr(tvd.CIFAR100, "tgz_md5", hashlib.md5(archive.getvalue()).hexdigest())
    monkeypatch.setattr(tvd.CIFAR100, "train_list", [["train", md5["train"]]])
    monkeypatch.setattr(tvd.CIFAR100, "test_list", [["test", md5["test"]]])
    meta = {"filename": "meta", "key": "fine_label_names", "md5": md5["meta"]}
    monkeypatch.setattr(tvd.CIFAR100, "meta", meta)
    return files, images["train"], np.arange(7) * 37 % 100


def test_cifar100_download_decodes_images_and_fine_labels(tmp_path, cifar100):
    _, images, labels = cifar100
    got_images, got_labels = data.download("cifar100", "train", tmp_path)
    assert got_images.dtype == np.uint8 and np.array_equal(got_images, images)
    assert got_labels.tolist() == labels.tolist()


@pytest.mark.parametrize("how", ["truncate", "corrupt"])
def test_a_damaged_cifar100_download_names_the_url(tmp_path, cifar100, how):
    files = cifar100[0]
    files["cifar-100-python.tar.gz"] = _damage(files["cifar-100-python.tar.gz"], how)
    with pytest.raises(RuntimeError, match=r"downloading cifar100 \(train\) from http://127"):
        data.download("cifar100", "train", tmp_path)
    assert not (tmp_path / "cifar-100-python").exists()


@pytest.fixture
def mnistm(http_files, monkeypatch):
    files, url = http_files
    images = torch.randint(0, 256, (6, 28, 28, 3), dtype=torch.uint8)
    labels = torch.arange(6) % 10
    payload = io.BytesIO()
    torch.save((images, labels), payload)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("mnist_m_train.pt")
        info.size = len(payload.getvalue())
        tar.addfile(info, io.BytesIO(payload.getvalue()))
    files["mnist_m_train.pt.tar.gz"] = archive.getvalue()
    monkeypatch.setattr(data, "MNISTM_RELEASE", url)
    md5 = hashlib.md5(archive.getvalue()).hexdigest()
    monkeypatch.setitem(data.MNISTM_FILES, "train", ("mnist_m_train.pt", md5))
    return files, images, labels


def test_mnistm_download_decodes_the_release(tmp_path, mnistm):
    _, images, labels = mnistm
    got_images, got_labels = data.download("mnistm", "train", tmp_path)
    np.testing.assert_array_equal(got_images, images.numpy())
    np.testing.assert_array_equal(got_labels, labels.numpy())


@pytest.mark.parametrize("how", ["truncate", "corrupt"])
def test_a_damaged_mnistm_download_names_the_url(tmp_path, mnistm, how):
    files, _, _ = mnistm
    files["mnist_m_train.pt.tar.gz"] = _damage(files["mnist_m_train.pt.tar.gz"], how)
    with pytest.raises(
        RuntimeError, match=r"downloading MNIST-M from http://127\.0\.0\.1:\d+/mnist_m_train"
    ):
        data.download("mnistm", "train", tmp_path)


@pytest.fixture
def weights_file(http_files):
    files, url = http_files
    payload = io.BytesIO()
    torch.save({"layer.weight": torch.ones(2, 2)}, payload)
    body = payload.getvalue()
    name = f"tiny-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    files[name] = body
    return files, name, f"{url}/{name}"


def test_weights_download_checks_the_hash_in_the_file_name(tmp_path, weights_file):
    _, _, url = weights_file
    download_weights(url, tmp_path / "w.pth")
    assert torch.load(tmp_path / "w.pth", weights_only=True)["layer.weight"].sum() == 4


@pytest.mark.parametrize("how", ["truncate", "corrupt", "missing"])
def test_a_damaged_or_missing_weights_file_is_rejected_and_nothing_is_left(
    tmp_path, weights_file, how
):
    files, name, url = weights_file
    if how == "missing":
        del files[name]
    else:
        files[name] = _damage(files[name], how)
    with pytest.raises(RuntimeError, match=f"downloading weights from {url} failed"):
        download_weights(url, tmp_path / "w.pth")
    assert list(tmp_path.iterdir()) == []


def test_unknown_dataset_and_missing_imagenet_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="dataset='mnistt' is not valid"):
        torchvision_dataset("mnistt", "train", tmp_path)
    with pytest.raises(FileNotFoundError, match="set `imagenet_root`"):
        imagenet(tmp_path / "nowhere", "train")


@pytest.fixture
def refusing_proxy():
    """An HTTP(S) proxy on 127.0.0.1 that answers every request with 503; yields (URL, counts of
    requests per host)."""
    requests: Counter[str] = Counter()

    class Handler(_Quiet):
        def _refuse(self):
            requests[self.path.split("//")[-1].split("/")[0].split(":")[0]] += 1
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_CONNECT = do_GET = do_HEAD = _refuse

    with _serving(Handler) as url:
        yield url, requests


@pytest.mark.e2e
def test_a_failing_download_is_retried_then_fails_naming_the_url_and_reason(
    tmp_path, refusing_proxy
):
    directory = copy_workflow(tmp_path)
    proxy, requests = refusing_proxy
    env = {**os.environ, "https_proxy": proxy, "http_proxy": proxy, "no_proxy": ""}
    env = {k: v for k, v in env.items() if k not in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY")}
    result = snakemake(
        directory, "--keep-going", "resources/models/resnet18.pth",
        "resources/data/cifar10/test.npz", env=env,
    )  # fmt: skip
    assert result.returncode != 0
    attempts = 4  # the first try and the rules' `retries: 3`
    assert requests["download.pytorch.org"] == attempts
    assert requests["www.cs.toronto.edu"] == attempts
    weights_log = (directory / "logs/embed/weights_resnet18.log").read_text()
    assert "downloading weights from https://download.pytorch.org/models/resnet18-" in weights_log
    assert "503" in weights_log
    data_log = (directory / "logs/data/cifar10.log").read_text()
    assert "from https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz failed" in data_log
    assert "503" in data_log
    assert not (directory / "resources/models/resnet18.pth").exists()
