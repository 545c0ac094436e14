"""The `openledger` command line parses and shows its command groups."""

from openledger_node import cli
from openledger_node.cli import build_parser, main


def test_help_lists_command_groups(capsys) -> None:
    parser = build_parser()
    text = parser.format_help()
    for group in ("devnet", "init", "run", "status", "genesis", "keys", "datanet", "model",
                  "escrow", "lora"):
        assert f"    {group} " in text, group


def test_no_command_prints_help_and_fails(capsys) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_group_with_a_missing_optional_dependency_says_so(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "fake_group_module.py").write_text("import not_installed_package_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMAND_MODULES, "fake_group_module", "fakegroup")
    help_text = " ".join(build_parser().format_help().split())  # argparse wraps long lines
    assert "fakegroup (unavailable: missing dependency not_installed_package_xyz)" in help_text
    assert main(["fakegroup"]) == 2
    assert "not_installed_package_xyz" in capsys.readouterr().err
