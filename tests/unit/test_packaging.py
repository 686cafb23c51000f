"""Static checks of the Dockerfile, compose file, constraints and systemd unit.

scripts/image-test.sh builds the image and runs it (CI runs it after pytest);
these checks are the quick half that needs no Docker engine: every file the
image copies exists and is not excluded, the commands it runs are the real
entry point, port and route, the image listens beyond the container only with
a token, and the environment compose sets is exactly what the config loader reads.
"""

from __future__ import annotations

import ast
import configparser
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from transcriber.api.server import check_exposure
from transcriber.config import SEED_ENV_KEYS, Config, load_config
from transcriber.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
ENV_REFERENCE = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def dockerfile() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, argument = line.strip().partition(" ")
            instructions.append((keyword.upper(), argument.strip()))
    return instructions


def instruction(keyword: str) -> str:
    return [argument for kind, argument in dockerfile() if kind == keyword][-1]


def image_env() -> dict[str, str]:
    """The image's ENV instructions, as the container's environment starts."""
    environment: dict[str, str] = {}
    for kind, argument in dockerfile():
        if kind == "ENV":
            environment.update(dict(pair.split("=", 1) for pair in argument.split()))
    return environment


def pins(path: Path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return dict(line.split("==") for line in lines if line)


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def expand(value: str, environ: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message}."""
    return ENV_REFERENCE.sub(lambda m: environ.get(m.group(1), m.group(2) or ""), str(value))


def test_dockerfile_copies_only_files_that_exist_and_are_not_dockerignored() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip()}
    copies = [argument.split()[:-1] for kind, argument in dockerfile() if kind == "COPY"]
    assert copies
    for sources in copies:
        for source in sources:
            assert (REPO / source).exists(), source
            assert source.split("/")[0].rstrip("/") not in ignored, source


def test_the_model_layer_needs_only_the_files_it_copies() -> None:
    """The models are installed before the code is copied (a code change must not
    re-download them), from a bootstrap copy of models.py and what it imports."""
    tree = ast.parse((REPO / "transcriber" / "engine" / "model_files.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    ours = {name for name in imported if name.startswith("transcriber.")} | {"transcriber.engine.model_files"}
    copies = [argument.split() for kind, argument in dockerfile() if kind == "COPY" and "bootstrap" in argument]
    copied = {f"{target.removeprefix('./bootstrap/')}{Path(source).name}" for *sources, target in copies
              for source in sources}
    needed = {module.replace(".", "/") + ".py" for module in ours}
    # each package on the way needs its __init__.py too
    needed |= {"/".join(module.split(".")[:depth]) + "/__init__.py" for module in ours
               for depth in range(1, module.count(".") + 1)}
    assert needed <= copied, needed - copied


def test_layers_put_torch_and_dependencies_before_the_code() -> None:
    steps = [argument for _, argument in dockerfile()]
    torch = next(i for i, step in enumerate(steps) if step.startswith("pip install") and " torch " in step)
    requirements = next(i for i, step in enumerate(steps) if "-r requirements.txt" in step)
    code = next(i for i, step in enumerate(steps) if step.startswith("transcriber ./transcriber"))
    assert torch < requirements < code
    assert '--index-url "${TORCH_INDEX_URL}"' in steps[torch]
    arguments = [argument for kind, argument in dockerfile() if kind == "ARG"]
    # The shipped default stays PyTorch's small CPU build; the variant and the index are build arguments.
    assert "TORCH_VARIANT=cpu" in arguments
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}" in arguments


def test_constraints_pin_the_engine_that_whisperx_was_tested_with() -> None:
    pinned = pins(REPO / "constraints.txt")
    assert {"torch", "torchaudio", "torchvision"} <= set(pinned)
    assert all(re.fullmatch(r"\d+(\.\d+)*", version) for version in pinned.values()), pinned  # no local labels
    # Both pip steps of the image and the set-up script install under the constraints.
    steps = [argument for kind, argument in dockerfile() if kind == "RUN" and argument.startswith("pip install")]
    assert [step for step in steps if "-c constraints.txt" in step] == steps[:2]
    assert "constraints.txt" in next(argument for kind, argument in dockerfile() if kind == "COPY")
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert '-r "$requirements" -c constraints.txt' in setup
    stamp = next(line for line in setup.splitlines() if "local stamp=" in line)
    assert "constraints.txt" in stamp and "requirements*.txt" in stamp
    # The pins agree with what WhisperX asks for, and with what the venv holds when it has them.
    from importlib.metadata import PackageNotFoundError, requires, version

    try:
        whisperx = {re.split(r"[~=<>!; ]", r)[0].lower(): r for r in requires("whisperx") or []}
    except PackageNotFoundError:
        pytest.skip("whisperx is not installed")
    assert whisperx["torch"].startswith(f"torch~={pinned['torch']}")
    for name, pin in pinned.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue
        assert installed.split("+")[0] == pin, (name, installed, pin)


def test_dockerfile_runs_the_real_entry_point_port_and_health_route() -> None:
    assert instruction("FROM").startswith("python:3.11-slim")
    command = json.loads(instruction("CMD"))
    assert command == ["python", "-m", "transcriber"] and (REPO / "transcriber" / "__main__.py").exists()
    # No --config: the CLI reads $CONFIG_PATH, so a CONFIG_PATH given to the container is honoured.
    assert "--config" not in instruction("CMD")
    cli = (REPO / "transcriber" / "cli.py").read_text()
    assert 'os.environ.get("CONFIG_PATH")' in cli
    assert image_env()["CONFIG_PATH"] == "/app/config.yaml"
    assert instruction("EXPOSE") == str(Config().api.port)
    health = instruction("HEALTHCHECK")
    assert "http://127.0.0.1:{port}/health" in health
    assert f"os.environ.get('TRANSCRIBER_API__PORT', '{Config().api.port}')" in health
    assert instruction("USER") == "transcriber"
    assert "--uid 1000 transcriber" in next(argument for kind, argument in dockerfile() if "useradd" in argument)


def test_the_image_listens_on_all_interfaces_and_only_with_a_token() -> None:
    environ = image_env()
    assert environ["TRANSCRIBER_API__HOST"] == "0.0.0.0"
    config = load_config(REPO / "config.yaml", environ=environ)  # the config baked into the image
    assert config.api.host == "0.0.0.0" and config.api.port == int(instruction("EXPOSE"))
    with pytest.raises(ConfigError, match="TRANSCRIBER_API_TOKEN"):
        check_exposure(config)  # `docker run` without a token: the daemon refuses to start
    check_exposure(load_config(REPO / "config.yaml", environ={**environ, "TRANSCRIBER_API_TOKEN": "t" * 32}))


def test_ci_builds_and_runs_the_image() -> None:
    script = REPO / "scripts" / "image-test.sh"
    assert script.stat().st_mode & 0o111
    text = script.read_text()
    assert "docker build" in text and "docker run -d" in text
    commands = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in commands if "--init" in line]  # the image must work without an init
    assert "image checks: $passed passed, $failed failed" in text
    runner = (REPO / "scripts" / "test.sh").read_text() + (REPO / ".ci" / "run").read_text()
    assert "scripts/image-test.sh" in runner


# In a fresh interpreter: the API's module, an app built on a daemon that was never
# started (no lock, no worker), and a request to it import no engine library.
SERVE_WITHOUT_ENGINE = textwrap.dedent("""
    import json, sys, warnings
    from transcriber.api.app import create_app
    from transcriber.config import Config
    from transcriber.scheduler.daemon import Daemon
    warnings.simplefilter("ignore")  # starlette's note on httpx, on stderr
    from fastapi.testclient import TestClient
    config = Config.model_validate({"shared_directory": sys.argv[1], "api": {"token": "t" * 32}})
    client = TestClient(create_app(Daemon(config)))
    health, tasks = client.get("/health"), client.get("/tasks")
    engines = sorted(name for name in ("torch", "whisperx", "ctranslate2") if name in sys.modules)
    print(json.dumps({"health": health.status_code, "body": health.json(), "tasks": tasks.status_code,
                      "engines": engines}))
""")


def test_the_health_route_exists_and_needs_no_token(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SERVE_WITHOUT_ENGINE, str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["tasks"] == 401  # the token is required elsewhere ...
    assert answer["health"] == 503 and answer["body"]["status"] == "unhealthy"  # ... not here (not started)
    assert answer["engines"] == [], "the API imported an engine library, which only the workers may load"


def test_compose_mounts_existing_files_and_declares_its_volumes() -> None:
    document = compose()
    for name, service in document["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (REPO / source).exists(), (name, source)
            else:
                assert source in document["volumes"], (name, source)
            assert target.startswith(("/app/", "/var/lib/postgresql"))
        if "build" in service:
            assert (REPO / service["build"]["context"] / "Dockerfile").exists()
    transcriber = document["services"]["transcriber"]
    assert transcriber["restart"] == "unless-stopped"
    assert transcriber["deploy"]["resources"]["limits"] == {"cpus": "2", "memory": "2g"}
    assert transcriber["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in document["services"]["postgres"]
    assert document["services"]["postgres"]["image"].startswith("postgres:16")
    assert document["services"]["transcriber-gpu"]["profiles"] == ["gpu"]
    # An init as defence in depth (the image must work without one: scripts/image-test.sh).
    assert transcriber["init"] is True and document["services"]["transcriber-gpu"]["init"] is True


@pytest.mark.parametrize("service", ["transcriber", "transcriber-gpu"])
def test_compose_environment_is_exactly_what_the_config_loader_reads(service: str) -> None:
    environment = compose()["services"][service]["environment"]
    operator = {"TRANSCRIBER_API_TOKEN": "a-long-random-token", "WHISPERX_MODEL_SIZE": "tiny.en"}
    environ = {**image_env(), **{key: expand(value, operator) for key, value in environment.items()}}
    for key in environment:
        if key in SEED_ENV_KEYS or key == "CONFIG_PATH":
            continue
        assert key.startswith("TRANSCRIBER_") and "__" in key, key
        section, field = key[len("TRANSCRIBER_"):].lower().split("__")
        section_model = Config.model_fields[section].annotation
        assert field in section_model.model_fields, key  # type: ignore[union-attr]
    config = load_config(REPO / "config.yaml", environ=environ)
    assert config.whisperx.model_size == "tiny.en"
    assert config.whisperx.device == environ["WHISPERX_DEVICE"]
    assert config.api.host == "0.0.0.0" and config.api.token.get_secret_value() == "a-long-random-token"
    assert config.database.url.get_secret_value().startswith("postgresql://transcriber:")
    assert "@postgres:5432/" in config.database.url.get_secret_value()
    check_exposure(config)  # listening on 0.0.0.0 is allowed because a token is required
    assert "?" in environment["TRANSCRIBER_API_TOKEN"]  # compose refuses to start without one
    mounted = [v.split(":")[1] for v in compose()["services"][service]["volumes"]]
    assert environ["CONFIG_PATH"] in mounted


def test_systemd_unit_runs_the_daemon_and_stops_it_gracefully() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(REPO / "deploy" / "transcriber.service")
    service = unit["Service"]
    assert re.search(r"\.venv/bin/python -m transcriber --config \S+config\.yaml$", service["ExecStart"])
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > Config().processing.shutdown_grace_seconds
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # config errors exit 2 (tests/unit/test_config.py)
    assert unit["Install"]["WantedBy"] == "multi-user.target"
