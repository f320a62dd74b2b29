"""Atomic writes: what they replace, and what they leave alone."""

from __future__ import annotations

import os
import stat

from imprint.io import atomic_path


def test_a_write_through_a_symbolic_link_replaces_its_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "models" / "k.pt"
    target.parent.mkdir()
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    link = tmp_path / "current.pt"
    link.symlink_to(target)
    with atomic_path(link) as temporary:
        temporary.write_bytes(b"new")
    assert link.is_symlink() and link.resolve() == target
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_only_the_temporaries_of_earlier_writes_are_cleaned_up(tmp_path):
    target = tmp_path / "k.pt"
    target.write_bytes(b"old")
    stale = tmp_path / ".k.pt.imprint-tmp-ab12_xyz.pt"  # what a killed write leaves
    stale.write_bytes(b"half")
    users = [tmp_path / name for name in (".k.pt.mybackup.pt", ".k.pt.imprint-tmp-mine.pt")]
    for path in users:
        path.write_bytes(b"keep me")
    with atomic_path(target) as temporary:
        temporary.write_bytes(b"new")
    assert not stale.exists()
    assert all(path.read_bytes() == b"keep me" for path in users)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["k.pt", *(path.name for path in users)]
    )
