"""What history keeps of secrets: names, never values."""

from __future__ import annotations

import json

from compound.reconcile.session import redacted_model
from compound.spec.model import FileObject, Project, Service


def test_history_model_redacts_secret_values() -> None:
    project = Project(
        name="p",
        working_dir="/w",
        files=("/w/compose.yaml",),
        services={
            "db": Service(
                name="db",
                image="postgres",
                environment={"POSTGRES_PASSWORD": "hunter2", "API_TOKEN": "t0k", "MODE": "prod"},
            )
        },
        secrets={"s": FileObject(key="s", name="p_s", environment="S_VAR", content="s3cret")},
        environment={"DB_PASSWORD": "hunter2", "TAG": "1"},
    )
    data = redacted_model(project)
    text = json.dumps(data)
    assert "hunter2" not in text and "t0k" not in text and "s3cret" not in text
    env = data["services"]["db"]["environment"]
    assert env == {"POSTGRES_PASSWORD": "<redacted>", "API_TOKEN": "<redacted>", "MODE": "prod"}
    assert data["environment"]["TAG"] == "1"
    assert data["secrets"]["s"]["environment"] == "S_VAR"  # where it comes from stays
