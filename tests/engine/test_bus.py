"""The event bus delivers each event to the subscribers of its class, in order, and
keeps doing so as subscribers come and go."""

from __future__ import annotations

from app.engine.bus import EngineState, Event, EventBus, QueueChanged


def test_events_reach_the_subscribers_of_their_class_as_subscriptions_change() -> None:
    bus = EventBus()
    everything: list[Event] = []
    queues: list[Event] = []
    bus.subscribe(everything.append)
    stop_queues = bus.subscribe(queues.append, (QueueChanged,))
    first = QueueChanged(queue="a")
    bus.publish(first)
    bus.publish(EngineState(state="running"))
    assert everything == [first, EngineState(state="running", at=everything[1].at)]
    assert queues == [first]
    stop_queues()
    bus.publish(QueueChanged(queue="b"))
    assert queues == [first]  # unsubscribed: the cached route was dropped
    late: list[Event] = []
    bus.subscribe(late.append, (QueueChanged, EngineState))
    bus.publish(QueueChanged(queue="c"))
    assert [e.queue for e in late] == ["c"]  # type: ignore[attr-defined]
    assert len(everything) == 4


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    bus = EventBus()
    seen: list[Event] = []

    def broken(_event: Event) -> None:
        raise RuntimeError("observer bug")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    bus.publish(QueueChanged(queue="a"))
    assert len(seen) == 1
