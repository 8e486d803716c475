"""docker-compose.yml stays valid without a Docker engine: it parses, every
service runs a command the `vitrine` CLI really has, and every file it mounts
or builds from exists in the project."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from gateway.settings import GatewaySettings
from mobile_api.settings import MobileApiSettings
from server.ingest.settings import IngestSettings
from server.settings import ServerSettings
from tests.support.services import REPO
from vitrine.cli import app
from vitrine.runtime.settings import CommonSettings

COMPOSE = REPO / "docker-compose.yml"
REQUIRED_SERVICES = {
    "mosquitto",
    "postgres",
    "server",
    "ingest",
    "gateway",
    "mobile_api",
    "firmware_sim",
}
#: Every long-running process of the product (README "Processes"), with its settings.
PROCESSES: dict[tuple[str, str], type[CommonSettings]] = {
    ("server", "run"): ServerSettings,
    ("server", "ingest"): IngestSettings,
    ("gateway", "run"): GatewaySettings,
    ("mobile-api", "run"): MobileApiSettings,
}


def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _vitrine_services() -> list[tuple[str, dict[str, Any]]]:
    return [
        (name, svc)
        for name, svc in _compose()["services"].items()
        if svc.get("image", "").startswith("vitrine")
    ]


def _resolve(args: list[str]) -> Any:
    """Walk the CLI like click would; raise if a sub-command does not exist."""
    # typer vendors its own click; only its duck-typed Group/Command API is used here.
    command: Any = typer.main.get_command(app)
    ctx = command.context_class(command)
    for arg in args:
        if arg.startswith("-") or not hasattr(command, "get_command"):
            break
        sub = command.get_command(ctx, arg)
        if sub is None:
            raise AssertionError(f"`vitrine {' '.join(args)}`: no sub-command {arg!r}")
        command = sub
    return command


def test_compose_has_every_service_and_the_sim_profile() -> None:
    services = _compose()["services"]
    assert set(services) >= REQUIRED_SERVICES
    assert services["firmware_sim"]["profiles"] == ["sim"]


@pytest.mark.parametrize("name", [n for n, _ in _vitrine_services()])
def test_each_vitrine_service_runs_a_real_command_with_its_options(name: str) -> None:
    svc = dict(_vitrine_services())[name]
    args = svc["command"]
    command = _resolve(args)
    known = {opt for p in command.params for opt in getattr(p, "opts", [])}
    for arg in args:
        if arg.startswith("--"):
            assert arg in known, f"{name}: `{arg}` is not an option of {command.name}"


def test_mounted_and_built_files_exist() -> None:
    data = _compose()
    for name, svc in data["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
        if "build" in svc:
            assert (REPO / svc["build"] / "Dockerfile").exists()
    for copied in ("vitrine", "server", "gateway", "mobile_api", "firmware_sim", "deploy"):
        assert (REPO / copied).is_dir()


def test_secrets_are_required_from_the_environment_not_written_here() -> None:
    text = COMPOSE.read_text()
    assert "${POSTGRES_PASSWORD:?" in text and "${VITRINE_SECRET_KEY:?" in text
    for _, svc in _vitrine_services():
        assert svc["environment"]["VITRINE_MODE"] == "production"


def test_every_process_of_the_product_runs_as_a_service() -> None:
    """Without ``server ingest`` a deployment takes facts and never acts on them."""
    commands = {tuple(svc["command"][:2]) for _, svc in _vitrine_services()}
    assert set(PROCESSES) <= commands, set(PROCESSES) - commands


@pytest.mark.parametrize(
    "name", [n for n, svc in _vitrine_services() if tuple(svc["command"][:2]) in PROCESSES]
)
def test_each_service_starts_in_production_mode_with_the_secrets_compose_asks_for(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process's own start-up check (placeholder secrets are refused outside
    local mode) passes on the environment compose gives it, each required
    ``${VAR:?…}`` filled in as an operator's .env would."""
    svc = dict(_vitrine_services())[name]
    settings_type = PROCESSES[tuple(svc["command"][:2])]
    for key, value in svc["environment"].items():
        filled = re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: f"{m.group(1).lower()}-from-env", value)
        monkeypatch.setenv(key, filled)
    settings_type().validate_for_run()


def test_broker_config_mounted_is_the_project_one() -> None:
    mosq = _compose()["services"]["mosquitto"]
    assert any(v.startswith("./deploy/mosquitto.conf:") for v in mosq["volumes"])
    assert Path(REPO / "deploy" / "mosquitto.conf").read_text().count("set_tcp_nodelay true") == 1
