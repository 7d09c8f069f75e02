import threading
import time

from compound.reconcile.slots import PrioritySlots, chain_heights, default_limit, start_priority
from tests.unit.fakes import project, service


def test_chain_heights_favour_heads_of_long_chains():
    p = project(
        service("db"),
        service("api", depends=["db"]),
        service("web", depends=["api"]),
        service("solo"),
    )
    assert chain_heights(p) == {"db": 3, "api": 2, "web": 1, "solo": 1}


def test_waiters_are_served_by_priority_not_arrival():
    slots = PrioritySlots(1)
    order: list[str] = []
    gate = threading.Event()

    def holder() -> None:
        with slots.slot((0, 0)):
            gate.wait(5)

    def waiter(name: str, prio: tuple[int, int]) -> None:
        with slots.slot(prio):
            order.append(name)

    h = threading.Thread(target=holder)
    h.start()
    time.sleep(0.05)
    threads = []
    for name, prio in (("leaf", (0, 0)), ("head", (-3, -1)), ("middle", (-2, -2))):
        t = threading.Thread(target=waiter, args=(name, prio))
        t.start()
        threads.append(t)
        time.sleep(0.05)  # arrival order: leaf, head, middle
    gate.set()
    for t in [h, *threads]:
        t.join(5)
    assert order == ["head", "middle", "leaf"]


def test_limit_from_environment(monkeypatch):
    monkeypatch.setenv("COMPOSE_PARALLEL_LIMIT", "3")
    assert default_limit() == 3
    monkeypatch.setenv("COMPOUND_PARALLEL_LIMIT", "7")
    assert default_limit() == 7


def test_late_chain_members_outrank_independent_leaves():
    p = project(
        service("a"), service("b", depends=["a"]), service("c", depends=["b"]), service("x")
    )
    prio = start_priority(p, set(p.services))
    assert sorted(p.services, key=prio.__getitem__) == ["a", "b", "c", "x"]
