"""Go's runtime on asyncio: channels, ``select``, timers, tracked tasks, virtual time.

Reading order: ``channels`` (Chan, select), ``timers`` (after, Timer),
``tasks`` (TaskGroup, Go's goFunc), ``virtual_loop`` (the simulated clock).
"""

from raft.runtime.channels import (
    Chan,
    ChannelClosedError,
    ChannelFullError,
    Send,
    blocked_on,
    describe_task,
    select,
    set_select_cost,
)
from raft.runtime.tasks import TaskGroup
from raft.runtime.timers import Timer, after
from raft.runtime.virtual_loop import VirtualTimeLoop, run_paused

__all__ = [
    "Chan",
    "ChannelClosedError",
    "ChannelFullError",
    "Send",
    "TaskGroup",
    "Timer",
    "VirtualTimeLoop",
    "after",
    "blocked_on",
    "describe_task",
    "run_paused",
    "select",
    "set_select_cost",
]
