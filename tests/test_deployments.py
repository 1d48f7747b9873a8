"""prefect.yaml: every deployment's entrypoint (relative to the project root) loads a flow with a usable form."""

from __future__ import annotations

import os

import pytest
import yaml

from tests.conftest import ROOT


def _deployments() -> list[dict[str, object]]:
    data = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return list(data["deployments"])


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: str(d["name"]))
def test_entrypoints_load_relative_to_the_project_root(deployment: dict[str, object]) -> None:
    from prefect.flows import Flow, load_flow_from_entrypoint

    entrypoint = str(deployment["entrypoint"])
    path = entrypoint.split(":")[0]
    assert not os.path.isabs(path) and (ROOT / path).is_file()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        flow = load_flow_from_entrypoint(entrypoint)
    finally:
        os.chdir(cwd)
    assert isinstance(flow, Flow)
    assert flow.parameters.properties  # the UI can render a run form


def test_autonomy_form_takes_a_request() -> None:
    from flows.autonomy import autonomy

    schema = autonomy.parameters.model_dump()
    assert set(schema["properties"]) >= {"request", "run_id", "runs_dir"}
    assert "RunRequest" in str(schema["definitions"])
