"""Embeddings files: a manifest with sizes and SHA-256 digests catches every kind of damage."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imprint.fms.store import (
    CorruptEmbeddingsError,
    labels_path,
    load_embeddings,
    manifest_path,
    open_embeddings,
    save_embeddings,
)


@pytest.fixture
def saved(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)).astype(np.float32)
    y = np.repeat(np.arange(5), 10)
    path = tmp_path / "train.npy"
    save_embeddings(path, x, y)
    return path, x, y


def test_round_trip_is_exact_and_memory_mapped(saved):
    path, x, y = saved
    got_x, got_y = open_embeddings(path)
    assert isinstance(got_x, np.memmap)
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    assert got_y.dtype == np.int64
    manifest = json.loads(manifest_path(path).read_text())
    assert manifest["embeddings"]["shape"] == [50, 6]


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_one_byte(path):
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def _remove(path):
    path.unlink()


@pytest.mark.parametrize(
    ("damage", "which", "message"),
    [
        (_truncate, "embeddings", "has .* bytes, its manifest says"),
        (_flip_one_byte, "embeddings", "does not match the SHA-256 digest"),
        (_flip_one_byte, "labels", "does not match the SHA-256 digest"),
        (_truncate, "labels", "has .* bytes"),
        (_remove, "labels", "is missing"),
        (_remove, "manifest", "is missing"),
        (_truncate, "manifest", "is not valid JSON"),
    ],
)
def test_damage_is_detected_before_use_with_how_to_regenerate(saved, damage, which, message):
    path = saved[0]
    target = {"embeddings": path, "labels": labels_path(path), "manifest": manifest_path(path)}
    damage(target[which])
    with pytest.raises(CorruptEmbeddingsError, match=message) as error:
        load_embeddings([str(path)])
    assert f"snakemake --forcerun {path}" in str(error.value)


def test_a_file_swapped_for_another_of_the_same_size_is_caught(saved):
    path, x, _ = saved
    np.save(path, x[::-1].copy())  # same shape, size and dtype; different content
    with pytest.raises(CorruptEmbeddingsError, match="SHA-256"):
        open_embeddings(path)


def test_only_float32_matrices_with_one_label_per_row_are_saved(tmp_path):
    with pytest.raises(ValueError, match="float32"):
        save_embeddings(tmp_path / "x.npy", np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        save_embeddings(tmp_path / "x.npy", np.zeros((3, 2), np.float32), np.zeros(4))
    assert not list(tmp_path.iterdir())


def test_constant_embeddings_are_saved_with_a_warning(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        save_embeddings(tmp_path / "ok.npy", np.eye(3, dtype=np.float32), np.arange(3))
        assert not caplog.records
        save_embeddings(tmp_path / "zero.npy", np.zeros((4, 2), np.float32), np.arange(4))
        save_embeddings(tmp_path / "same.npy", np.ones((4, 2), np.float32), np.arange(4))
    messages = [r.getMessage() for r in caplog.records]
    assert "all 4 embeddings in" in messages[0] and "zero.npy are zero" in messages[0]
    assert "same.npy are identical" in messages[1] and "chance accuracy" in messages[1]
