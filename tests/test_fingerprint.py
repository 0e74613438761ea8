"""Input fingerprints: size + SHA-256 (sampled above 64 MiB), folders by their files, hub ids by name."""

from __future__ import annotations

import hashlib

from baldro.runfolder import fingerprint as fp


def test_a_small_file_is_hashed_whole_and_a_big_one_by_samples(tmp_path, monkeypatch):
    small = tmp_path / "a.json"
    small.write_bytes(b"abc")
    assert fp.file_fingerprint(small) == {"size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}
    monkeypatch.setattr(fp, "FULL_HASH_BYTES", 100)
    monkeypatch.setattr(fp, "BLOCK", 4)
    monkeypatch.setattr(fp, "SAMPLES", 3)
    big = tmp_path / "w.bin"
    big.write_bytes(bytes(range(200)))
    blocks = bytes(range(0, 4)) + bytes(range(98, 102)) + bytes(range(196, 200))  # offsets 0, 98, 196
    assert fp.file_fingerprint(big) == {"size": 200, "sha256": hashlib.sha256(b"200" + blocks).hexdigest(),
                                        "sampled": True}


def test_folders_hub_ids_and_what_counts_as_a_change(tmp_path):
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    (data / "forget.json").write_text("1\n")
    (data / "raw" / "forget.txt").write_text("t")
    (data / ".cache").write_text("hidden")
    before = fp.fingerprint(data)
    assert before["path"] == str(data.resolve()) and sorted(before["files"]) == ["forget.json", "raw/forget.txt"]
    assert sorted(fp.fingerprint(data, recursive=False)["files"]) == ["forget.json"]
    assert fp.fingerprint("locuslab/TOFU") == {"name": "locuslab/TOFU"}

    (data / "new.json").write_text("added")  # nothing read it when the run started
    assert fp.input_changes({"data.source": before}, {"data.source": fp.fingerprint(data)}) == {}
    (data / "forget.json").write_text("2\n")
    (data / "raw" / "forget.txt").unlink()
    changes = fp.input_changes({"data.source": before, "model.path": {"name": "x/y"}},
                               {"data.source": fp.fingerprint(data), "model.path": {"name": "x/z"}})
    old, new = hashlib.sha256(b"1\n").hexdigest()[:12], hashlib.sha256(b"2\n").hexdigest()[:12]
    assert changes == {"data.source": [f"forget.json changed (sha256 {old} → {new}, 2 → 2 bytes)",
                                       "raw/forget.txt is missing"],
                       "model.path": ["x/y → x/z"]}
    assert fp.input_changes({}, {"model.tokenizer": {"name": "t"}}) == {"model.tokenizer": ["given now, not when the run started"]}
