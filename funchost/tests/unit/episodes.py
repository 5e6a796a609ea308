"""An orchestration instance driven one episode at a time through the real EpisodeRunner and the SDK,
for the unit tests of replay and rewind: what the engine would do, without a store or a loop."""

from __future__ import annotations

from funchost.durable.replay import Episode, EpisodeRunner, new_instance
from funchost.stores.base import RUNNING, Json

T0 = 1_700_000_000.0


class SteppedInstance:
    """An instance and its history; ``step`` runs one episode with the events given (and any pending)."""

    def __init__(self, runner: EpisodeRunner, name: str) -> None:
        self.runner = runner
        self.record, start = new_instance(name, "i1", None, T0)
        self.record.status = RUNNING
        self.history: list[Json] = []
        self.pending: list[Json] = [start.event]
        self.now = T0

    def step(self, *events: Json) -> Episode:
        self.now += 1
        delivered = self.pending + list(events)
        self.pending = []
        episode = self.runner.run(self.record, self.history, delivered, self.now)
        self.history.extend(episode.new_history)
        self.record.status = episode.status
        return episode
