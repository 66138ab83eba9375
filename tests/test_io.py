"""Project tables: provenance lines read explicitly, no comment parsing, every character round-trips."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from syndface.io import count_rows, read_header_lines, read_tsv, save_figure, save_npz, save_torch, write_tsv

AWKWARD = [
    "img/a#1.png",  # a web file name: a comment parser would cut the row here
    "# starts like a provenance line",
    "tab\tinside",
    "double \"quotes\" and 'single'",
    "new\nline",
    "  leading and trailing spaces  ",
    "unicode: Łódź, São Paulo, 東京, emoji 🙂",
    "/data/My Photos/face 01.jpg",
    "NA",  # a value, not a missing one
]


def test_awkward_fields_and_provenance_round_trip(tmp_path):
    table = pd.DataFrame(
        {
            "image_id": ["007", *[f"id{i}" for i in range(1, len(AWKWARD))]],
            "path": AWKWARD,
            "note": list(reversed(AWKWARD)),
            "value": np.arange(len(AWKWARD), dtype=float) / 3,
        }
    )
    header = ["settings: size=64 # not a comment", "tool: a\nsecond line is folded into the first"]
    write_tsv(table, tmp_path / "t.tsv", header_lines=header)
    back = read_tsv(tmp_path / "t.tsv")
    pd.testing.assert_frame_equal(back, table)
    assert read_header_lines(tmp_path / "t.tsv") == [
        "settings: size=64 # not a comment",
        "tool: a second line is folded into the first",
    ]
    assert count_rows(tmp_path / "t.tsv") == len(AWKWARD)
    # The first data row starting with "#" is still data, also with no provenance lines at all.
    first = table.iloc[[1, 0]].reset_index(drop=True)
    write_tsv(first, tmp_path / "plain.tsv")
    assert read_header_lines(tmp_path / "plain.tsv") == []
    pd.testing.assert_frame_equal(read_tsv(tmp_path / "plain.tsv"), first)


def test_an_empty_field_is_missing_and_a_byte_order_mark_is_ignored(tmp_path):
    (tmp_path / "excel.tsv").write_bytes("\ufeffimage_id\tpath\tx\n1\timg/a#2.png\t\n".encode("utf-8"))
    back = read_tsv(tmp_path / "excel.tsv")
    assert back.columns.tolist() == ["image_id", "path", "x"]
    assert back["image_id"].tolist() == ["1"] and back["path"].tolist() == ["img/a#2.png"] and back["x"].isna().all()


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["png", "pdf", "svg"])
def test_the_same_figure_gives_the_same_bytes(tmp_path, fmt):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    digests = []
    for run in range(2):
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1, 3], label="x")
        ax.legend()
        save_figure(fig, tmp_path / f"run{run}.{fmt}")
        digests.append(_sha(tmp_path / f"run{run}.{fmt}"))
    assert digests[0] == digests[1]
    assert b"Matplotlib v" not in (tmp_path / f"run0.{fmt}").read_bytes()  # no version stamp either


def test_torch_and_npz_files_are_byte_identical_across_runs(tmp_path, monkeypatch):
    import time

    import torch

    obj = {"w": torch.arange(6.0).reshape(2, 3), "meta": {"fold": 1}}
    save_torch(obj, tmp_path / "a.pt")
    save_npz({"m": np.eye(3), "n": np.arange(4)}, tmp_path / "a.npz", compressed=True)
    # Another process id (torch named its archive after the temporary file) and a later clock (zip dates).
    monkeypatch.setattr("os.getpid", lambda: 424242)
    real_time = time.time
    monkeypatch.setattr("time.time", lambda: real_time() + 3600)
    save_torch(obj, tmp_path / "b.pt")
    save_npz({"n": np.arange(4), "m": np.eye(3)}, tmp_path / "b.npz", compressed=True)
    assert _sha(tmp_path / "a.pt") == _sha(tmp_path / "b.pt")
    assert _sha(tmp_path / "a.npz") == _sha(tmp_path / "b.npz")
    assert torch.equal(torch.load(tmp_path / "b.pt", weights_only=True)["w"], obj["w"])
    with np.load(tmp_path / "b.npz") as saved:
        assert np.array_equal(saved["m"], np.eye(3))


def test_every_torch_load_in_the_package_is_weights_only():
    """Safe loading: no checkpoint, weights file or pickle is unpickled with code execution allowed
    (the FFHQ pickle goes through syndface.gan.ffhq's restricted unpickler instead)."""
    import ast
    from pathlib import Path

    import syndface

    calls = []
    for path in sorted(Path(syndface.__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            func = node.func if isinstance(node, ast.Call) else None
            if isinstance(func, ast.Attribute) and func.attr == "load" and getattr(func.value, "id", "") == "torch":
                keywords = {k.arg: k.value for k in node.keywords}
                safe = isinstance(keywords.get("weights_only"), ast.Constant) and keywords["weights_only"].value is True
                calls.append((f"{path.name}:{node.lineno}", safe))
    assert len(calls) >= 5, calls  # the scan finds the package's loads
    assert [where for where, safe in calls if not safe] == []
