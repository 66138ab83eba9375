"""`syndface fetch-weights` against a local HTTP server: atomic, verified, offline-friendly."""

from __future__ import annotations

import hashlib
import http.server
import logging
import threading
from pathlib import Path

import pytest

from syndface import weights
from syndface.weights import WeightsError, fetch, load_catalog

REPO = Path(__file__).resolve().parents[1]
BODY = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(BODY).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        Handler.requests.append(self.path)
        if self.path == "/missing":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        if self.path == "/interrupted":  # promise 1 MiB, send a third, hang up
            self.wfile.write(BODY[: len(BODY) // 3])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def no_requests_yet():
    Handler.requests.clear()


def _leftovers(folder: Path, keep: Path | None = None) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p != keep)


def test_download_is_verified_and_lands_whole(server, tmp_path, caplog):
    out = tmp_path / "weights" / "model.safetensors"
    with caplog.at_level(logging.INFO, logger="syndface.weights"):
        assert weights.fetch(f"{server}/good", out, SHA.upper(), progress_seconds=0) == out
    assert out.read_bytes() == BODY
    assert _leftovers(out.parent, keep=out) == []  # no partial file left behind
    assert any("%)" in r.getMessage() and "MB/s" in r.getMessage() for r in caplog.records)  # progress lines


def test_wrong_checksum_names_both_digests_and_leaves_nothing(server, tmp_path):
    out = tmp_path / "model.pt"
    wrong = "0" * 64
    with pytest.raises(WeightsError, match=f"expected sha256 {wrong}, got {SHA}") as error:
        fetch(f"{server}/good", out, wrong)
    assert "nothing was written" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_leaves_no_file_that_looks_complete(server, tmp_path):
    out = tmp_path / "model.pt"
    with pytest.raises(WeightsError, match="interrupted") as error:
        fetch(f"{server}/interrupted", out, SHA)
    assert f"{len(BODY) // 3} of {len(BODY)} bytes" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_http_error_and_unreachable_host_are_clear_errors(server, tmp_path):
    with pytest.raises(WeightsError, match="404.*copy it to"):
        fetch(f"{server}/missing", tmp_path / "a.pt", SHA)
    closed = "http://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(WeightsError, match="failed after 0 bytes"):
        fetch(closed, tmp_path / "b.pt", SHA, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_present_file_with_the_pinned_checksum_is_used_without_network(server, tmp_path):
    out = tmp_path / "model.pt"
    out.write_bytes(BODY)  # an offline cluster: the file was copied in
    before = out.stat().st_mtime_ns
    assert fetch("http://127.0.0.1:9/unreachable", out, SHA) == out
    assert out.stat().st_mtime_ns == before and Handler.requests == []


def test_present_file_with_another_checksum_is_refused_and_kept(server, tmp_path):
    out = tmp_path / "model.pt"
    out.write_bytes(BODY[:-1])
    with pytest.raises(WeightsError, match="exists but its sha256 is .* not the pinned .* Delete it"):
        fetch(f"{server}/good", out, SHA)
    assert out.read_bytes() == BODY[:-1] and Handler.requests == []


def test_published_prefix_pins_and_the_full_digest_is_logged(server, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="syndface.weights"):
        fetch(f"{server}/good", tmp_path / "a.pth", SHA[:8])
    assert SHA in caplog.text
    with pytest.raises(WeightsError, match="checksum mismatch"):
        fetch(f"{server}/good", tmp_path / "b.pth", "deadbeef")


def test_unpinned_file_needs_an_explicit_choice(server, tmp_path, caplog):
    with pytest.raises(WeightsError, match="no SHA-256 is pinned"):
        fetch(f"{server}/good", tmp_path / "a.pt", None)
    assert Handler.requests == []
    with caplog.at_level(logging.WARNING, logger="syndface.weights"):
        fetch(f"{server}/good", tmp_path / "a.pt", None, allow_unpinned=True)
    assert f"UNPINNED; pin its sha256 before trusting it: {SHA}" in caplog.text


@pytest.mark.parametrize("pin", ["xyz", "abc1234", "0" * 65])
def test_malformed_pins_are_refused(pin, tmp_path):
    with pytest.raises(WeightsError, match="not a SHA-256 pin"):
        fetch("http://127.0.0.1:9/", tmp_path / "a.pt", pin)


def test_command_line(server, tmp_path):
    from syndface.cli import main

    out = tmp_path / "w" / "model.pt"
    assert main(["fetch-weights", "--url", f"{server}/good", "--sha256", SHA, "--out", str(out)]) == 0
    assert out.read_bytes() == BODY
    assert main(["fetch-weights", "--url", f"{server}/good", "--sha256", "1" * 64, "--out", str(out)]) == 1


def test_catalog_lists_the_papers_weights_with_pins_or_an_honest_null():
    catalog = load_catalog(REPO / "resources" / "weights.yaml")
    assert set(catalog) == {
        "tf_efficientnet_b4.ns_jft_in1k",
        "ffhq-res256-mirror-paper256-noaug",
        "pt_inception-2015-12-05",
    }
    for name, entry in catalog.items():
        assert entry["url"].startswith("https://") and entry["url"].rsplit("/", 1)[-1], name
        if entry["sha256"] is not None and len(str(entry["sha256"])) == 8:  # a prefix: it must be the file name's
            assert f"-{entry['sha256']}." in entry["file"], name


def test_the_catalog_names_every_file_the_paper_config_fetches():
    """config/paper.yaml's pretrained files are resources/weights/<file> targets of the fetch rule:
    each is in the catalog with a URL, and --from-catalog finds its pin by the file name."""
    import yaml
    from conftest import REPO

    from syndface.weights import CATALOG, catalog_entry, catalog_files

    paper = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    wanted = {paper["classifier"]["pretrained"], paper["gan"]["ffhq_weights"], paper["saliency"]["imagenet_weights"]}
    assert {Path(p).parent.as_posix() for p in wanted} == {"resources/weights"}
    for path in wanted:
        assert Path(path).name in catalog_files()
        assert catalog_entry(CATALOG, Path(path).name)["url"].startswith("https://")
    assert catalog_entry(CATALOG, "tf_efficientnet_b4_ns-d6313a46.pth")["sha256"] == "d6313a46"
    with pytest.raises(WeightsError, match="lists no file 'nope.bin'"):
        catalog_entry(CATALOG, "nope.bin")
    assert (REPO / "resources/weights.yaml").resolve() == CATALOG
