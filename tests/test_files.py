"""open_tree: folders, archives read in place, and every kind of entry it must skip with a reason."""

import os
import pickle
import zipfile

import pytest

from flaxgpt.ingest.files import open_tree


def _collect(path, **kw):
    skipped = {}
    tree = open_tree(path, on_skip=lambda rel, why: skipped.__setitem__(rel, why), **kw)
    return tree, skipped


def test_folder_sorted_hidden_and_globs(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.md").write_text("z")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / "drafts").mkdir()
    (tmp_path / "drafts" / "x.md").write_text("x")
    tree, skipped = _collect(tmp_path, exclude=["drafts"])
    assert [f.rel for f in tree.files] == ["a.txt", "b/z.md"]
    assert skipped == {".git": "hidden", "drafts": "excluded by glob"}
    assert tree.get("b/z.md").read_text() == "z"
    tree, skipped = _collect(tmp_path, include=["*.md"])
    assert [f.rel for f in tree.files] == ["b/z.md", "drafts/x.md"]
    assert skipped["a.txt"] == "excluded by glob"


def test_symlink_loop_and_broken_link(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("hello")
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    os.symlink(tmp_path / "missing", tmp_path / "dangling.txt")
    os.symlink(tmp_path / "self", tmp_path / "self")
    tree, skipped = _collect(tmp_path)
    assert [f.rel for f in tree.files] == ["d/f.txt"]
    assert skipped["d/loop"].startswith("symlink loop")
    assert skipped["dangling.txt"] == "broken symlink"
    assert skipped["self"] == "symlink loop"


def test_zip_read_in_place_and_picklable(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("users.json", "[]")
        zf.writestr("general/2024-01-02.json", '[{"text": "hi"}]')
        zf.writestr("__MACOSX/._users.json", "junk")
        zf.writestr("inner.zip", b"PK")
    tree, skipped = _collect(archive)
    assert tree.label == "export.zip" and tree.disk_root is None
    assert [f.rel for f in tree.files] == ["general/2024-01-02.json", "users.json"]
    assert skipped == {"inner.zip": "nested archive inside an archive (not opened)"}
    f = pickle.loads(pickle.dumps(tree.get("general/2024-01-02.json")))
    assert f.read_text() == '[{"text": "hi"}]'
    # a zip inside a folder is opened too, its members named through the archive
    folder_tree, _ = _collect(tmp_path)
    assert "export.zip!/users.json" in [f.rel for f in folder_tree.files]
    assert list(tmp_path.iterdir()) == [archive]  # nothing unpacked to disk


def test_zip_bomb_corrupt_zip_and_oversized(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.txt", b"\0" * (8 * 2**20))
        zf.writestr("ok.txt", "fine")
    (tmp_path / "corrupt.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    (tmp_path / "big.txt").write_text("x" * 5000)
    tree, skipped = _collect(tmp_path, max_file_bytes=4096)
    assert [f.rel for f in tree.files] == ["bomb.zip!/ok.txt"]
    assert skipped["bomb.zip!/zeros.txt"].startswith("oversized")
    assert skipped["corrupt.zip"].startswith("corrupt zip")
    assert skipped["big.txt"].startswith("oversized")
    tree, skipped = _collect(bomb)
    assert skipped["zeros.txt"].startswith("zip bomb suspected")


def test_missing_path_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        open_tree(tmp_path / "nowhere")
