"""Provenance's package list (requirements.txt) reads each distribution's name and version from the head of its
metadata; it must say exactly what importlib.metadata's full parse says."""

from importlib import metadata

from dlcli.runs import provenance


def test_the_package_list_is_what_the_full_metadata_parse_gives():
    seen = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    expected = "".join(line + "\n" for _, line in sorted(seen.items()))
    assert provenance.requirements() == expected
    assert "torch==" in expected and "pytorch-lightning==" in expected.lower()


def test_name_and_version_stop_at_the_headers(tmp_path):
    info = tmp_path / "demo_pkg-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.2\nSummary: x\n\n"
                                   "Name: not-this\nVersion: 9.9\n")
    (dist,) = metadata.distributions(path=[str(tmp_path)])
    assert provenance.name_and_version(dist) == ("demo-pkg", "1.2") == (dist.metadata["Name"], dist.version)
    # the description's lines are not fields: a package without a Version header has none. (`dist.version` is
    # None for the standard library's reader but a KeyError for the importlib_metadata backport, which replaces
    # the standard library's finder once anything imports it; `.get` answers None for both.)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-pkg\n\nVersion: 9.9\n")
    meta = dist.metadata
    assert provenance.name_and_version(dist) == ("demo-pkg", None) == (meta.get("Name"), meta.get("Version"))
    (info / "METADATA").write_text("Metadata-Version: 2.1\nSummary: no name\n")
    assert provenance.name_and_version(dist) == (None, None)
