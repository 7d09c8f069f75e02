"""Load balancers are labelled as the project's but are not its instances."""

from __future__ import annotations

from typing import Any

from compound.runtimes.base import LABEL_NUMBER, LABEL_PROJECT, LABEL_ROLE, LABEL_SERVICE
from compound.runtimes.instances import list_instances, list_load_balancers


class FakeAPI:
    def __init__(self) -> None:
        base = {LABEL_PROJECT: "p", LABEL_SERVICE: "web"}
        self.labels = {
            "web1": {**base, LABEL_NUMBER: "1"},
            "web2": {**base, LABEL_NUMBER: "2"},
            "lb": {**base, LABEL_ROLE: "lb"},
        }
        self.filters: list[Any] = []

    def containers(self, all: bool, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        self.filters.append(filters)
        wanted = dict(f.split("=", 1) for f in filters["label"])
        return [
            {"Id": cid, "Labels": labels}
            for cid, labels in self.labels.items()
            if all_items(wanted, labels)
        ]

    def inspect_container(self, cid: str) -> dict[str, Any]:
        return {"Id": cid, "Name": f"/p-{cid}", "Config": {"Labels": self.labels[cid]}}


def all_items(wanted: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


class FakeClient:
    def __init__(self) -> None:
        self.api = FakeAPI()


def test_instances_leave_the_load_balancer_out() -> None:
    client = FakeClient()
    assert [i.id for i in list_instances(client, "p")] == ["web1", "web2"]  # type: ignore[arg-type]
    assert [i.id for i in list_instances(client, "p", "web")] == ["web1", "web2"]  # type: ignore[arg-type]


def test_load_balancers_are_found_by_role() -> None:
    client = FakeClient()
    found = list_load_balancers(client, "p")  # type: ignore[arg-type]
    assert [(i.id, i.name, i.service) for i in found] == [("lb", "p-lb", "web")]
    assert client.api.filters[-1] == {"label": [f"{LABEL_PROJECT}=p", f"{LABEL_ROLE}=lb"]}
