"""docker/compose.triton.yaml: every AGECAST_ variable its services set is a real setting and
they load (the Triton nodes' settings on top of the image's), as for docker/compose.yaml."""

from __future__ import annotations

import yaml

from tests.test_docker_config import DOCKER, compose_environments, dockerfile_environment, problems

COMPOSE = DOCKER / "compose.triton.yaml"


def test_triton_compose_sets_only_real_settings_and_they_load() -> None:
    image = dockerfile_environment((DOCKER / "Dockerfile").read_text())
    services = compose_environments(COMPOSE.read_text())
    nodes = {k: v for k, v in services.items() if k.startswith("agecast-node")}
    assert len(nodes) >= 2
    for name, env in services.items():
        if name == "triton":
            continue
        assert problems({**image, **env}) == [], name
    for env in nodes.values():
        assert env["AGECAST_BACKEND"] == "triton"
        assert env["AGECAST_TRITON_URL"] == "grpc://triton:8001"


def test_the_repository_step_runs_agecast_triton_repo_into_the_volume_triton_serves() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    repo = doc["services"]["triton-repo"]
    assert repo["entrypoint"] == ["agecast"] and repo["command"][:4] == [
        "triton", "repo", "--out", "/models",
    ]  # fmt: skip
    assert "models:/models:ro" in doc["services"]["triton"]["volumes"]
    assert "--model-repository=/models" in doc["services"]["triton"]["command"]
