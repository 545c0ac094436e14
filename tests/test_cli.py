"""The `openledger` command line parses and shows its command groups."""

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
