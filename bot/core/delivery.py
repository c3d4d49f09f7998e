"""Platform events delivered at least once, handled once.

Slack and Telegram send an event again when it got no 200: a timeout, a refused or reset
connection (a replica killed mid-work), an error status. So the endpoints answer only once
the work is done, the reply sent (or at a bound: 2.5 s for Slack, inside its 3 s; half the
lease for the Telegram webhook), and the store's event claim keeps the work from happening
twice:

- `claim_event` takes the event for this replica: the first time its id is seen, or when
  the replica that claimed it has not finished it within the lease
  (`FOURNIL_CLAIM_LEASE_SECONDS`): that one most likely died mid-work, never answered the
  platform, and the platform sent the event again;
- `finish_event` marks it done once the work is over: it is never taken over after that,
  and a retry of it is skipped (answered 200);
- a retry of an event that another replica claimed and is still working on (not done,
  lease running) is not handled and is answered 503, so that the platform sends it once
  more later: by then it is done (skipped) or its lease has run out (taken over).

Each of these is a single conditional statement in the SQL store, so two replicas racing
on one event never both win it.

Handling an event again must give the reply the first attempt gave (idempotent
processing): the conversation state and the card record that work writes are tagged with
the event (`current_event`), and a take-over first rolls back what the dead replica's
partial work wrote for it, in the transaction of the take-over. Otherwise a rewrite whose
first attempt saved it before dying would then be compared with itself. (Practice turns,
drill answers and onboarding steps are not rolled back: a take-over in their middle
handles them from what was saved.)

One window is left, inherent to at-least-once with platforms that cannot deduplicate a
message: a replica killed after its reply went out and before its event was marked done
(the time of one database write) has its event handled again: the same reply, twice.

How the pieces meet: the endpoint that received a request wraps it in `receiving(...)`
(the task it starts for the work inherits that context); each piece of work runs inside
`handling(store)`, and the channel asks `claim(store, channel, event_id)` before it
replies. After the work, `Delivery.busy` tells the endpoint to answer 503 instead of 200
(Slack's listener, in HTTP and Socket Mode alike, and the Telegram webhook). Without an
endpoint around it (Telegram polling, tests) `handling` opens a delivery of its own:
claims are taken and finished the same way.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum

from bot.core.errors import StoreUnavailable
from bot.core.ports import ConversationStore

log = logging.getLogger(__name__)

CLAIM_LEASE_SECONDS = 30.0  # FOURNIL_CLAIM_LEASE_SECONDS's default
REPLICA_NAME_MAX = 128  # processed_events.claimant


def replica_name() -> str:
    """Who claims an event: the host (a pod's name), the process and a random tag, so a
    restarted process with the same pid is another claimant."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[-REPLICA_NAME_MAX:]


class Claim(StrEnum):
    """What `claim` decided for one delivery of an event."""

    FIRST = "first"  # claimed here (first seen, or taken over after the lease): handle it
    UNCLAIMED = "unclaimed"  # the store is down: handled without a claim (a reply rather than silence)
    DONE = "done"  # handled already: skip it, answer 200
    BUSY = "busy"  # another replica's, lease running: skip it, answer 503 so it comes again

    @property
    def handle(self) -> bool:
        return self in {Claim.FIRST, Claim.UNCLAIMED}


@dataclass
class Delivery:
    """One HTTP request of a platform (or one update in polling mode) and what its work
    decided: the events it claimed (finished when the work ends) and whether an event was
    left to another replica still working on it (`busy`: answer 503)."""

    busy: bool = False
    claimed: list[tuple[str, str]] = field(default_factory=list)


_current: ContextVar[Delivery | None] = ContextVar("fournil_delivery", default=None)


def current_event(channel: str) -> str | None:
    """The id of the event of `channel` that the current piece of work claimed, if any:
    what the store tags the state that work writes with."""
    delivery = _current.get()
    if delivery is None:
        return None
    return next((event for kind, event in reversed(delivery.claimed) if kind == channel), None)


@contextmanager
def receiving(delivery: Delivery) -> Iterator[Delivery]:
    """`delivery` is the current one for what runs inside, tasks created inside included."""
    token = _current.set(delivery)
    try:
        yield delivery
    finally:
        _current.reset(token)


@asynccontextmanager
async def handling(store: ConversationStore) -> AsyncIterator[Delivery]:
    """A piece of work on a delivery: the endpoint's (see `receiving`), or one of its own.
    When the work ends, its claims are finished, after an error too (the apology is its
    reply, and a retry would only fail again), but not when it is cancelled (at shutdown:
    the lease runs out, and a retry the platform sends takes it over)."""
    delivery = _current.get()
    token = None
    if delivery is None:
        delivery = Delivery()
        token = _current.set(delivery)
    try:
        yield delivery
    except Exception:
        await _finish(store, delivery)
        raise
    else:
        await _finish(store, delivery)
    finally:
        if token is not None:
            _current.reset(token)


async def _finish(store: ConversationStore, delivery: Delivery) -> None:
    claimed, delivery.claimed = delivery.claimed, []
    for channel, event_id in claimed:
        try:
            await store.finish_event(channel, event_id)
        except StoreUnavailable as exc:  # the store logs its outage once
            log.debug("event %s of %s could not be marked done: %s", event_id, channel, exc)


async def claim(store: ConversationStore, channel: str, event_id: str) -> Claim:
    """Whether to handle this delivery of an event (see the module docstring). A claim
    taken here is finished when the current `handling` block ends; a `BUSY` answer marks
    the current delivery busy."""
    delivery = _current.get()
    try:
        if await store.claim_event(channel, event_id):
            if delivery is not None:
                delivery.claimed.append((channel, event_id))
            return Claim.FIRST
        done = await store.event_done(channel, event_id)
    except StoreUnavailable:
        return Claim.UNCLAIMED
    if done:
        return Claim.DONE
    if delivery is not None:
        delivery.busy = True
    return Claim.BUSY
