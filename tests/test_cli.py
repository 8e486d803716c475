"""The root command mounts only the package that owns the command asked for."""

from __future__ import annotations

import subprocess
import sys

import typer
import typer.main

from vitrine.cli import COMMAND_OWNERS, PACKAGE_CLIS, build_app


def _top_level(app: typer.Typer) -> set[str]:
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    return set(command.list_commands(typer.Context(command)))


def test_the_owner_table_matches_what_each_package_registers() -> None:
    own = _top_level(build_app(()))
    assert own == {"demo", "run"}
    registered: dict[str, str] = {}
    for module in PACKAGE_CLIS:
        for name in _top_level(build_app((module,))) - own:
            assert name not in registered, f"{name}: {registered.get(name)} and {module}"
            registered[name] = module
    assert registered == COMMAND_OWNERS


def test_a_package_command_does_not_import_the_other_packages() -> None:
    probe = (
        "import sys\n"
        "sys.argv = ['vitrine', 'epc', 'decode', '3034257BF7194E4000001A85']\n"
        "from vitrine.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'server', 'mobile_api', 'firmware_sim', 'bench', 'sqlalchemy', 'fastapi'}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    lines = done.stdout.strip().splitlines()
    assert '"scheme":"sgtin-96"' in lines[0]
    assert lines[-1] == "[]"
