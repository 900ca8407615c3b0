"""CIFAR readers on small archives written here in the official format (Python-2 style pickles), the
restricted unpickler, and verified downloads from a local HTTP server."""

import hashlib
import http.server
import io
import os
import pickle
import struct
import tarfile
import threading
from typing import ClassVar

import numpy as np
import pytest
import torch

from vrm_train.data import (
    CIFAR_SPECS,
    DatasetError,
    build_data,
    download_file,
    load_cifar,
    load_cifar10,
    load_cifar100,
    safe_unpickle,
)


class Py2Pickler(pickle._Pickler):
    """Writes pickles like Python 2's cPickle did for the official files: str/bytes as BINSTRING and numpy
    globals spelled ``numpy.core.multiarray``."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def _save_py2_str(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str

    def save_global(self, obj, name=None):
        module = obj.__module__.replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def py2_dumps(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def make_cifar_files(name, n_per_file=6, seed=0, dumps=py2_dumps):
    """{member name: bytes} of a tiny CIFAR-10/100 in the official layout, plus the expected arrays."""
    spec = CIFAR_SPECS[name]
    rng = np.random.default_rng(seed)
    files, expect = {}, {"train": [], "test": []}
    for part in [*spec.train_files, spec.test_file]:
        data = rng.integers(0, 256, (n_per_file, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, spec.num_classes, n_per_file)]
        d = {
            "batch_label": f"batch {part}",
            "data": data,
            "filenames": [f"f{i}.png" for i in range(n_per_file)],
        }
        if name == "cifar10":
            d["labels"] = labels
        else:
            d["fine_labels"] = labels
            d["coarse_labels"] = [lab // 5 for lab in labels]
        files[part] = dumps(d)
        expect["test" if part == spec.test_file else "train"].append((data, labels))
    if name == "cifar10":
        meta = {
            "label_names": [f"c10_{i}" for i in range(10)],
            "num_cases_per_batch": n_per_file,
            "num_vis": 3072,
        }
    else:
        meta = {"fine_label_names": [f"fine_{i}" for i in range(100)], "coarse_label_names": ["x"] * 20}
    files[spec.meta_file] = dumps(meta)
    return files, expect


def write_folder(root, name, files):
    folder = root / CIFAR_SPECS[name].folder
    folder.mkdir(parents=True)
    for k, v in files.items():
        (folder / k).write_bytes(v)
    return folder


def archive_bytes(name, files) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for k, v in files.items():
            info = tarfile.TarInfo(f"{CIFAR_SPECS[name].folder}/{k}")
            info.size = len(v)
            tar.addfile(info, io.BytesIO(v))
    return buf.getvalue()


def check_split(split, parts, name):
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    assert split.images.dtype == torch.uint8 and split.images.shape == (len(data), 3, 32, 32)
    # Rows are 1024 red, 1024 green, 1024 blue values, each row-major 32x32.
    assert np.array_equal(split.images[:, 1, 2, 5].numpy(), data[:, 1024 + 2 * 32 + 5])
    assert np.array_equal(split.images.reshape(len(data), -1).numpy(), data)
    assert split.labels.dtype == torch.int64 and split.labels.tolist() == labels.tolist()
    assert split.name == name


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
@pytest.mark.parametrize("layout", ["folder", "parent", "archive", "archive_dir"])
def test_cifar_reads_folder_and_archive(tmp_path, name, layout):
    files, expect = make_cifar_files(name)
    if layout in ("folder", "parent"):
        folder = write_folder(tmp_path, name, files)
        root = folder if layout == "folder" else tmp_path
    else:
        path = tmp_path / CIFAR_SPECS[name].archive
        path.write_bytes(archive_bytes(name, files))
        root = path if layout == "archive" else tmp_path
    train, test = (load_cifar10 if name == "cifar10" else load_cifar100)(root)
    check_split(train, expect["train"], name)
    check_split(test, expect["test"], name)
    assert len(train) == 6 * len(CIFAR_SPECS[name].train_files) and len(test) == 6
    n = CIFAR_SPECS[name].num_classes
    assert train.classes == (
        [f"c10_{i}" for i in range(10)] if n == 10 else [f"fine_{i}" for i in range(100)]
    )
    assert not any(p.name.endswith(".part") for p in tmp_path.rglob("*"))


def test_cifar100_uses_fine_labels_and_numpy2_pickles_load(tmp_path):
    files, expect = make_cifar_files("cifar100", dumps=lambda o: pickle.dumps(_to_bytes_keys(o), protocol=4))
    write_folder(tmp_path, "cifar100", files)
    train, _ = load_cifar100(tmp_path)
    assert train.labels.tolist() == list(expect["train"][0][1])
    coarse = [lab // 5 for lab in expect["train"][0][1]]
    assert train.labels.tolist() != coarse


def _to_bytes_keys(d):
    return {k.encode(): v for k, v in d.items()}


def test_missing_cifar_names_path_and_remedy(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_cifar("cifar10", tmp_path / "nothing")
    msg = str(e.value)
    assert str(tmp_path / "nothing") in msg and "download=True" in msg and "cifar-10-python.tar.gz" in msg
    with pytest.raises(DatasetError, match="unknown CIFAR"):
        load_cifar("cifar1000", tmp_path)


def test_malformed_cifar_files_are_rejected(tmp_path):
    files, _ = make_cifar_files("cifar10")
    files["data_batch_3"] = py2_dumps({"data": np.zeros((4, 100), np.uint8), "labels": [0, 1, 2, 3]})
    write_folder(tmp_path / "a", "cifar10", files)
    with pytest.raises(DatasetError, match=r"data_batch_3.*uint8 \[N, 3072\]"):
        load_cifar10(tmp_path / "a")

    files, _ = make_cifar_files("cifar10")
    files["test_batch"] = py2_dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]})
    write_folder(tmp_path / "b", "cifar10", files)
    with pytest.raises(DatasetError, match="labels outside"):
        load_cifar10(tmp_path / "b")

    files, _ = make_cifar_files("cifar10")
    del files["data_batch_5"]
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "cifar-10-python.tar.gz").write_bytes(archive_bytes("cifar10", files))
    with pytest.raises(DatasetError, match="no member cifar-10-batches-py/data_batch_5"):
        load_cifar10(tmp_path / "c")

    full = archive_bytes("cifar10", make_cifar_files("cifar10")[0])
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "cifar-10-python.tar.gz").write_bytes(full[: len(full) // 2])
    with pytest.raises(DatasetError, match="cannot read archive"):
        load_cifar10(tmp_path / "d")

    files, _ = make_cifar_files("cifar10")
    files["test_batch"] = files["test_batch"][:50]
    write_folder(tmp_path / "e", "cifar10", files)
    with pytest.raises(DatasetError, match="test_batch"):
        load_cifar10(tmp_path / "e")


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_forbidden_global_is_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": _RunsShell(marker), b"labels": [0]}, protocol=4)
    # The payload really runs under plain pickle, so the test would notice if it were executed.
    pickle.loads(pickle.dumps(_RunsShell(tmp_path / "control"), protocol=2))
    assert (tmp_path / "control").exists()

    files, _ = make_cifar_files("cifar10")
    files["data_batch_1"] = evil
    write_folder(tmp_path / "folder", "cifar10", files)
    with pytest.raises(DatasetError, match=r"refusing global (posix|os|nt)\.system"):
        load_cifar10(tmp_path / "folder")
    assert not marker.exists()

    (tmp_path / "arch").mkdir()
    (tmp_path / "arch" / "cifar-10-python.tar.gz").write_bytes(archive_bytes("cifar10", files))
    with pytest.raises(DatasetError, match="refusing global"):
        load_cifar10(tmp_path / "arch")
    assert not marker.exists()

    with pytest.raises(DatasetError, match=r"refusing global builtins\.eval"):
        safe_unpickle(b"cbuiltins\neval\n(S'1+1'\ntR.", source="x")
    with pytest.raises(DatasetError, match="not a readable dataset pickle"):
        safe_unpickle(b"\x80\x02}q", source="x")


# --------------------------------------------------------------------------------------------- download
class _Server:
    def __init__(self, routes):
        self.routes, self.requests = routes, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def served(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    archive = archive_bytes("cifar10", make_cifar_files("cifar10")[0])
    server = _Server({"/cifar-10-python.tar.gz": archive})
    yield server, archive, hashlib.md5(archive).hexdigest()
    server.close()


def test_download_then_load(tmp_path, served):
    server, archive, md5 = served
    url = server.base + "/cifar-10-python.tar.gz"
    bundle = build_data("cifar10", root=tmp_path, download=True, url=url, md5=md5, progress=False)
    assert (tmp_path / "cifar-10-python.tar.gz").read_bytes() == archive
    assert len(bundle.train) == 30 and len(bundle.test) == 6 and bundle.num_classes == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-python.tar.gz"]
    # Present and verified: no second request.
    path = download_file(url, tmp_path / "cifar-10-python.tar.gz", md5=md5, progress=False)
    assert path == tmp_path / "cifar-10-python.tar.gz" and len(server.requests) == 1


def test_download_bad_md5_removes_partial(tmp_path, served):
    server, _, _ = served
    with pytest.raises(DatasetError, match=r"md5 .* expected 0{32}"):
        download_file(
            server.base + "/cifar-10-python.tar.gz", tmp_path / "a.tar.gz", md5="0" * 32, progress=False
        )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatasetError, match=r"expected 0{32}"):
        load_cifar(
            "cifar10", tmp_path, download=True, url=server.base + "/cifar-10-python.tar.gz", md5="0" * 32
        )
    assert list(tmp_path.iterdir()) == []


def test_download_404(tmp_path, served):
    server, _, md5 = served
    with pytest.raises(DatasetError, match="HTTP 404"):
        download_file(server.base + "/missing.tar.gz", tmp_path / "x" / "m.tar.gz", md5=md5, progress=False)
    assert list((tmp_path / "x").iterdir()) == []
    assert server.requests == ["/missing.tar.gz"]


def test_official_cifar_urls_and_checksums():
    assert CIFAR_SPECS["cifar10"].url == "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    assert CIFAR_SPECS["cifar10"].md5 == "c58f30108f718f92721af3b95e74349a"
    assert CIFAR_SPECS["cifar100"].url == "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    assert CIFAR_SPECS["cifar100"].md5 == "eb9058c3a382ffc7106e4002c42a8d85"


def test_build_data_cifar100_defaults(tmp_path):
    files, _ = make_cifar_files("cifar100", n_per_file=40)
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(archive_bytes("cifar100", files))
    b = build_data("cifar100", root=tmp_path)
    assert b.in_memory and (b.num_classes, b.in_chans, b.image_size) == (100, 3, 32)
    assert (b.crop_padding, b.flip) == (4, True)
    assert b.mean == (0.5071, 0.4867, 0.4408) and b.std == (0.2675, 0.2565, 0.2761)
    assert len(b.train) == 40 and b.val is None and len(b.test) == 40 and b.classes[7] == "fine_7"
    with pytest.raises(DatasetError, match="32 px"):
        build_data("cifar100", root=tmp_path, image_size=64)
    ten = build_data(
        "cifar10", root=write_folder(tmp_path / "c10", "cifar10", make_cifar_files("cifar10")[0])
    )
    assert ten.mean == (0.4914, 0.4822, 0.4465) and ten.std == (0.2470, 0.2435, 0.2616)
