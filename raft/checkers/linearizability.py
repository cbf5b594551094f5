"""Linearizability checking: is a concurrent history explained by some sequential order?

A client history records, for every operation, who issued it, what it asked, what it was told,
and when the call started and returned. The history is *linearizable* if we can pick, for each
operation, one instant between its call and its return at which it took effect, so that the
operations applied one by one in the order of those instants, to a sequential model of the
service, give exactly the answers the clients saw. Raft promises this for a key-value store
built on it (Raft paper §8); this module is how the project checks the promise, both on
reference histories with known verdicts and on histories recorded by the fault simulator.

Paper:   Raft §8 (clients must see linearizable semantics).
Mirrors: nothing in hashicorp/raft. The checker follows porcupine's checker.go
         (github.com/anishathalye/porcupine, MIT, by Anish Athalye), which implements the
         search of Wing & Gong, "Testing and verifying concurrent objects" (1993), with the
         memoization and the linked-list representation of Lowe, "Testing for linearizability"
         (2017), and checks each independent part of a history separately
         (P-compositionality, Horn & Kroening 2015). The code and comments here are our own.
Read before: kv.py (the service whose histories we check).
Read after:  lincheck.py (the ``raft-sim lincheck`` command).
Reading order in this file: ``Operation`` and ``Model``; ``_search``, the whole algorithm in
one loop; ``check_operations``, which runs the parts' searches in turn within the budgets;
``_explain``; the two models; the two log parsers.

Theory of operation
-------------------
Put every call and every return of a history on one time line. Walk it from the left. A call
seen before the first return is a *candidate*: nothing forces it to come after anything still
pending. Try a candidate: if the model accepts its answer in the current state, take it out of
the line (it is now *linearized*) and start again from the left with the new state. If we
reach a return instead, the operation it closes should have been linearized already, so the
choice made last was wrong: put that operation back and try the next candidate after it. An
empty line means every operation found its place: the history is linearizable. Running out of
choices at the first level means it is not.

Two facts keep this search small enough. (1) The line is a doubly linked list, so taking an
operation out ("lift") and putting it back ("unlift") cost O(1), and the undo happens in
exactly the reverse order. (2) Whatever order got us there, the future depends only on *which*
operations are linearized and on the model's state; so we remember every (set, state) pair we
have reached and never explore one twice. The set is a Python int used as a bit set.

Keeping a check bounded
-----------------------
Small enough is not always small: deciding linearizability is NP-complete (Gibbons & Korach,
1997), and the memo grows by one entry for every new (set, state) pair. In porcupine's
50-client key-value history ``c50-bad``, four of the ten keys are such hard parts: each fills
half a gigabyte of memo within seconds (the kv model's state is the key's whole string, and
concurrent appends give a new string for every order), and porcupine itself cannot decide key
'0' alone within 20 s. Yet the history is easy to refute: key '3' fails after 8,600 steps.
When the parts were searched one after another, the checker started with key '0' and never
reached key '3': 24 GB after four minutes. Three rules keep every check bounded.

(3) The parts take turns. Each part's search is a generator that pauses every 1,024 steps, and
``check_operations`` runs them round robin. One failing part is enough for "no", so the first
part to fail ends the check, however hard the parts beside it are; porcupine gets the same
effect by searching the parts in parallel and cancelling the rest. A finished part's memo is
freed at once, and which part fails first depends on step counts only, never on the clock.

(4) Budgets, checked at every pause: ``timeout`` (seconds), ``max_steps`` (search steps over all
parts) and ``max_memory`` (the estimated bytes of the memos of the parts still running, on by
default: ``DEFAULT_MAX_MEMORY``). Spending one ends the check with ``linearizable=None`` and
``exhausted`` naming it: "unknown", never a crash or a machine out of memory. The estimate
counts, per entry, the pair, its bit set (as wide as the part), its slot in the set, and a state
whose size is sampled once per pause. ``steps``, ``peak_entries`` and ``peak_memory`` in the
result say what a check cost. Some linearizable histories have hard parts too (in
bench/lincheck.py, ``gen-c50-ok-s0``, whose key '2' also runs porcupine out of memory): a "yes"
needs every part, so for them "unknown" is the honest answer.

(5) An explanation costs no second search. The search keeps its deepest point, the longest
prefix it managed to linearize and the state after it, as it goes; ``_explain`` only lists the
candidates that could follow that prefix, as porcupine's partial linearizations do.

Operations of unknown outcome
-----------------------------
A client that timed out does not know whether its operation took effect. We give such an
operation the return time ``math.inf`` and the output ``UNKNOWN``, which every model must
accept in every state. It may then be linearized at any point after its call, including after
every other operation, where its effect can no longer be seen by anyone: that placement is the
"it never happened" case. Porcupine does the same for Jepsen's ``:info`` operations. The
checker ignores the ``output`` field of an operation whose ``ret`` is ``inf``.

Input and output formats (what the fault simulator records)
-----------------------------------------------------------
One ``Operation(client, input, output, call, ret)`` per client request; ``ret = math.inf``
if the client never learned the outcome.

``kv_model`` (also exported as ``kv_cas_model``): string keys, every key starts as ""
(as in kv.py); the history is split by key.

    input                            output                               effect
    ("get", key)                     the value read, a str                none
    ("put", key, value)              None (ignored)                       key = value
    ("append", key, value)           None (ignored)                       key = key + value
    ("cas", key, expected, new)      True if it swapped, else False       if key == expected: key = new

``register_model``: one register that starts absent (None), as in Jepsen's etcd test.

    input                            output                               effect
    ("read",)                        the value read, None if absent       none
    ("write", value)                 None (ignored)                       register = value
    ("cas", expected, new)           True if it swapped, else False       if equal: register = new

For either model, an output of ``UNKNOWN`` means the answer was lost: the operation may or may
not have taken effect (with a finite ``ret``, it did so before ``ret`` if at all).

Reference logs: ``parse_etcd_log`` reads Jepsen's etcd logs into register operations and
``parse_kv_log`` reads the kv logs into ``kv_model`` operations. Both use the line number as
the time stamp, as porcupine does, so only the order of the lines matters.
"""

from __future__ import annotations

import enum
import math
import re
import sys
import time
from collections.abc import Generator, Hashable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "UNKNOWN",
    "CheckResult",
    "HistoryFormatError",
    "KVModel",
    "Model",
    "Operation",
    "RegisterModel",
    "check_operations",
    "format_operation",
    "kv_cas_model",
    "kv_model",
    "parse_etcd_log",
    "parse_kv_log",
    "register_model",
]


class Unknown(enum.Enum):
    """The type of ``UNKNOWN``; an enum so that the sentinel is a single, typed value."""

    UNKNOWN = "unknown"

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = Unknown.UNKNOWN
"""The output of an operation whose outcome the client never learned. Models accept it always."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One client request: what it asked, what it was told, and when it started and returned."""

    client: int
    input: Any
    output: Any
    call: float
    ret: float  # math.inf: the outcome is unknown (the output is then ignored)

    @property
    def outcome_known(self) -> bool:
        return self.ret != math.inf


class Model(Protocol):
    """The sequential specification that a history is checked against.

    ``init``, ``step`` and ``describe_operation`` are required. Subclass ``Model`` to inherit
    the defaults of the others: one partition, ``repr`` for states.

    States are used as dictionary keys by the memoization, so they must be hashable and equal
    exactly when the model cannot tell them apart; a model whose natural state is a dict should
    step through a ``frozenset`` of items or a sorted tuple instead.
    """

    def init(self) -> Hashable:
        """The state before any operation."""
        ...

    def step(self, state: Hashable, input: Any, output: Any) -> tuple[bool, Hashable]:
        """Apply ``input`` in ``state``: is ``output`` a possible answer, and what state follows?

        Must return ``(True, ...)`` when ``output`` is ``UNKNOWN``, whatever the state.
        """
        ...

    def describe_operation(self, input: Any, output: Any) -> str:
        """A short human form, such as ``get('x') -> 'ab'``."""
        ...

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]:
        """Split the history into parts that can be checked on their own (e.g. one per key).

        A history is linearizable exactly when every part is, provided operations of different
        parts never affect each other (P-compositionality). The default is one part.
        """
        return [list(history)]

    def describe_partition(self, operations: Sequence[Operation]) -> str:
        """Name a part in an explanation, such as ``key 'x'``."""
        return "the history"

    def describe_state(self, state: Hashable) -> str:
        return repr(state)


@dataclass(frozen=True)
class CheckResult:
    """The verdict, and when it is "no", the evidence a person can follow."""

    linearizable: bool | None  # None: a budget (time, steps or memory) ran out before a verdict
    explanation: str = ""  # a few lines, only when linearizable is False
    # Evidence from the part that failed (empty unless linearizable is False):
    failed_partition: int | None = None  # index into model.partition(history)
    prefix: tuple[Operation, ...] = ()  # the longest linearizable prefix, in linearization order
    stuck: tuple[Operation, ...] = ()  # the operations that could come next, and none of which fits
    # When linearizable is True: for each part, one valid order of all its operations.
    linearizations: tuple[tuple[Operation, ...], ...] = ()
    # What the search cost. Left out of ==: two results are equal when they say the same thing.
    exhausted: str = field(default="", compare=False)  # when None: "time", "steps" or "memory"
    steps: int = field(default=0, compare=False)  # search steps, over every part
    peak_entries: int = field(default=0, compare=False)  # most memo entries held at one time
    peak_memory: int = field(default=0, compare=False)  # their estimated size in bytes


# ---------------------------------------------------------------------------------------------
# The search
# ---------------------------------------------------------------------------------------------

# A part's search hands control back once per this many steps (well under a millisecond of
# work). There the budgets are checked and the next part takes its turn; the clock stays out of
# the inner loop.
_SLICE = 1024

DEFAULT_MAX_MEMORY = 512 * 2**20
"""The memo's default budget, in estimated bytes: a check then stays well under 1 GB."""

# What a memo entry costs beyond the objects it holds: its slot in the set (a hash and a
# pointer, 16 bytes, in a table CPython keeps between two and four times larger than its
# contents). On the hard histories of bench/lincheck.py, a process's peak RSS stays within the
# estimate plus the 20 MB or so of the interpreter and the history.
_SET_SLOT_BYTES = 48


@dataclass
class _Failure:
    """What the search learned when it gave up: its deepest point, for the explanation."""

    prefix: list[int]  # operation numbers, in linearization order
    state: Hashable  # the model's state after the prefix


# A search's result: a linearization (operation numbers) or the evidence of its failure, and the
# steps taken since its last pause.
_Found = tuple[list[int] | _Failure, int]


def _linked_line(ops: Sequence[Operation]) -> tuple[list[int], list[int], list[int], list[int]]:
    """Lay out every call and return on one time line, as arrays of a doubly linked list.

    Node 0 is the head and node 2n+1 a tail that is never removed, so no link is ever missing.
    Returns ``next``, ``prev``, ``match`` (for a call node: its return node; 0 for a return)
    and ``op_of`` (the operation number of each node).
    """
    # At equal times a call sorts before a return: operations that touch at one instant count
    # as concurrent, the generous reading (a return and a call in one clock tick may be in
    # either order in reality).
    events = sorted([(op.call, 0, i) for i, op in enumerate(ops)] + [(op.ret, 1, i) for i, op in enumerate(ops)])
    size = len(events) + 2
    nxt = list(range(1, size + 1))
    prv = list(range(-1, size - 1))
    op_of = [-1] * size
    call_node = [0] * len(ops)
    return_node = [0] * len(ops)
    for node, (_, is_return, i) in enumerate(events, start=1):
        op_of[node] = i
        if is_return:
            return_node[i] = node
        else:
            call_node[i] = node
    match = [0] * size
    for i in range(len(ops)):
        match[call_node[i]] = return_node[i]
    return nxt, prv, match, op_of


def _search(model: Model, ops: Sequence[Operation]) -> Generator[tuple[int, int], None, _Found]:
    """Find a linearization of ``ops`` (a list of operation numbers) or fail with evidence.

    Mirrors: porcupine checker.go checkSingle, with arrays in place of node objects.
    Differs: a generator, paused every _SLICE steps to report the size of its memo (entries,
             estimated bytes) to ``check_operations``, which decides whether it goes on.
             Porcupine runs each part on a goroutine and cancels it through a context.
    """
    nxt, prv, match, op_of = _linked_line(ops)
    tail = len(nxt) - 1
    bit = [1 << i for i in range(len(ops))]
    inputs = [op.input for op in ops]
    outputs = [op.output if op.ret != math.inf else UNKNOWN for op in ops]
    step = model.step
    seen: set[tuple[int, Hashable]] = set()  # (linearized bit set, state) pairs already explored
    stack: list[tuple[int, Hashable]] = []  # (call node, state before it), in linearization order
    state = model.init()
    linearized = 0
    deepest = _Failure([], state)
    deepest_length = 0
    # The memo's size: an entry is a pair, a bit set as wide as the part, a slot of the set, and
    # a state; the states' size is sampled once per slice (sizing every one would slow the loop).
    entry_bytes = sys.getsizeof((0, 0)) + sys.getsizeof(1 << len(ops)) + _SET_SLOT_BYTES
    sampled_bytes = samples = 0
    seen_add = seen.add
    node = nxt[0]
    countdown = _SLICE
    while nxt[0] != tail:
        countdown -= 1
        if countdown == 0:
            countdown = _SLICE
            sampled_bytes += sys.getsizeof(state)
            samples += 1
            yield len(seen), len(seen) * (entry_bytes + sampled_bytes // samples)
        ret = match[node]
        if ret:  # a call: try to linearize its operation now
            i = op_of[node]
            ok, new_state = step(state, inputs[i], outputs[i])
            if ok:
                bits = linearized | bit[i]
                key = (bits, new_state)
                if key not in seen:
                    seen_add(key)
                    stack.append((node, state))
                    state, linearized = new_state, bits
                    # lift: unlink the call, then its return
                    nxt[prv[node]] = nxt[node]
                    prv[nxt[node]] = prv[node]
                    nxt[prv[ret]] = nxt[ret]
                    prv[nxt[ret]] = prv[ret]
                    node = nxt[0]
                    continue
            node = nxt[node]
            continue
        # A return: its operation is still pending but had to take effect before now.
        if not stack:
            return deepest, _SLICE - countdown
        if len(stack) > deepest_length:
            deepest_length = len(stack)
            deepest = _Failure([op_of[n] for n, _ in stack], state)
        node, state = stack.pop()
        linearized ^= bit[op_of[node]]
        ret = match[node]
        # unlift: relink in the reverse order of the lift, return first
        nxt[prv[ret]] = ret
        prv[nxt[ret]] = ret
        nxt[prv[node]] = node
        prv[nxt[node]] = node
        node = nxt[node]
    return [op_of[n] for n, _ in stack], _SLICE - countdown


@dataclass
class _Cost:
    """What a check has spent so far, over all its parts."""

    steps: int = 0
    entries: int = 0  # memo entries of the parts still running
    memory: int = 0  # their estimated bytes
    peak_entries: int = 0
    peak_memory: int = 0

    def resize(self, before: tuple[int, int], after: tuple[int, int]) -> None:
        """One part's memo went from ``before`` to ``after`` (entries, bytes)."""
        self.entries += after[0] - before[0]
        self.memory += after[1] - before[1]
        self.peak_entries = max(self.peak_entries, self.entries)
        self.peak_memory = max(self.peak_memory, self.memory)

    def spent(self, deadline: float | None, max_steps: int | None, max_memory: int | None) -> str:
        """The budget that has run out ("time", "steps" or "memory"), or ""."""
        if deadline is not None and time.monotonic() > deadline:
            return "time"
        if max_steps is not None and self.steps > max_steps:
            return "steps"
        if max_memory is not None and self.memory > max_memory:
            return "memory"
        return ""

    def stamp(self, result: CheckResult) -> CheckResult:
        return replace(result, steps=self.steps, peak_entries=self.peak_entries, peak_memory=self.peak_memory)


def check_operations(model: Model, history: Sequence[Operation], timeout: float | None = None,
                     max_steps: int | None = None, max_memory: int | None = DEFAULT_MAX_MEMORY) -> CheckResult:
    """Decide whether ``history`` is linearizable with respect to ``model``.

    Mirrors: porcupine checker.go CheckOperationsVerbose.
    Differs: the parts take turns of _SLICE steps on one thread, where porcupine gives each a
             goroutine (CPython threads would not run them at once); as in porcupine, the first
             part that fails ends the check.

    Each part from ``model.partition`` is searched on its own. Three budgets turn a search that
    costs too much into ``linearizable=None``, with ``exhausted`` naming the one spent:
    ``timeout`` (seconds, for the whole history); ``max_steps`` (search steps over all parts,
    counted in slices of 1,024), a budget that gives the same verdict on every machine, which a
    seeded run needs; and ``max_memory``, the estimated bytes of the memos held at one time,
    deterministic too (``None`` lifts it).
    """
    for op in history:
        if not op.call <= op.ret or math.isinf(op.call):
            raise ValueError(f"operation {op!r}: needs a finite call time and call <= ret")
    deadline = None if timeout is None else time.monotonic() + timeout
    parts = model.partition(history)
    searches = {index: _search(model, part) for index, part in enumerate(parts)}
    sizes = dict.fromkeys(searches, (0, 0))  # memo (entries, bytes) of each part
    orders: list[tuple[Operation, ...]] = [() for _ in parts]
    cost = _Cost()
    try:
        while searches:
            for index, search in list(searches.items()):
                try:
                    size = next(search)
                    cost.steps += _SLICE
                except StopIteration as stop:
                    found, last_steps = stop.value
                    cost.steps += last_steps
                    size = (0, 0)  # a finished search has let go of its memo
                    del searches[index]
                    if isinstance(found, _Failure):
                        return cost.stamp(_explain(model, parts[index], (index, len(parts), len(history)), found))
                    orders[index] = tuple(parts[index][i] for i in found)
                cost.resize(sizes[index], size)
                sizes[index] = size
                # Checked after every turn, even a part's last: many small parts may each
                # finish within their first turn.
                exhausted = cost.spent(deadline, max_steps, max_memory)
                if exhausted:
                    return cost.stamp(CheckResult(None, exhausted=exhausted))
    finally:
        for search in searches.values():
            search.close()  # frees its memo now, not whenever the collector gets to it
    return cost.stamp(CheckResult(True, linearizations=tuple(orders)))


# ---------------------------------------------------------------------------------------------
# Explaining a failure
# ---------------------------------------------------------------------------------------------

# How much of the longest prefix an explanation shows: its end is where the trouble starts.
_PREFIX_SHOWN = 5


def format_operation(model: Model, op: Operation) -> str:
    """One line for a person: ``[3, 7] client 2: write(4)``; ``[3, ∞)`` for an unknown outcome."""
    output = op.output if op.outcome_known else UNKNOWN
    interval = f"[{op.call:g}, {op.ret:g}]" if op.outcome_known else f"[{op.call:g}, ∞)"
    return f"{interval} client {op.client}: {model.describe_operation(op.input, output)}"


def _candidates(ops: Sequence[Operation], done: set[int]) -> list[int]:
    """The operations not in ``done`` that are called before any of them returns."""
    rest = [i for i in range(len(ops)) if i not in done]
    first_return = min((ops[i].ret for i in rest), default=math.inf)
    return sorted((i for i in rest if ops[i].call <= first_return), key=lambda i: (ops[i].call, i))


def _explain(model: Model, ops: Sequence[Operation], where: tuple[int, int, int], failure: _Failure) -> CheckResult:
    """Turn the deepest point of a failed search into a short story.

    ``where`` is (index of this part, number of parts, number of operations in the history).
    Porcupine shows its longest partial linearizations in a browser; we print the end of the
    longest one and the operations that could follow it.
    """
    index, parts, total = where
    prefix = failure.prefix
    stuck = _candidates(ops, set(prefix))
    for i in stuck:
        # Had the model accepted one of them, the search would have gone one step deeper.
        assert not model.step(failure.state, ops[i].input, ops[i].output if ops[i].outcome_known else UNKNOWN)[0], (
            "Invariant: at the deepest point of the search the model refuses every candidate")
    label = model.describe_partition(ops)
    size = f"{len(ops)} of {total} operations, part {index + 1} of {parts}" if parts > 1 else f"{total} operations"
    lines = [f"{label[:1].upper()}{label[1:]} ({size}) has no valid order."]
    if prefix:
        shown = prefix[-_PREFIX_SHOWN:]
        what = "ends with" if len(shown) < len(prefix) else "is"
        lines.append(f"The longest linearizable prefix has {len(prefix)} operation(s) and {what}:")
        lines += [f"  {format_operation(model, ops[i])}" for i in shown]
        lines.append(f"leaving the state {model.describe_state(failure.state)}. None of these can come next:")
    else:
        lines.append(f"From the initial state {model.describe_state(failure.state)}, none of these can come first:")
    lines += [f"  {format_operation(model, ops[i])}" for i in stuck]
    return CheckResult(
        False,
        "\n".join(lines),
        failed_partition=index,
        prefix=tuple(ops[i] for i in prefix),
        stuck=tuple(ops[i] for i in stuck),
    )


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------


def _require(condition: bool, rule: str, input: Any, output: Any) -> None:
    """Reject a badly recorded answer: a wrong verdict about it would send someone bug-hunting."""
    if not condition:
        raise ValueError(f"kv model: {rule}, but {input!r} was recorded with the output {output!r}")


def _shown_output(output: Any, show: str) -> str:
    return " -> ?" if output is UNKNOWN else show


class RegisterModel(Model):
    """One register with read, write and compare-and-set; it starts absent (``None``).

    The semantics of Jepsen's etcd test: a read of ``None`` means the key did not exist; a cas
    answered ``True`` swapped, one answered ``False`` found another value and changed nothing.
    """

    def init(self) -> Hashable:
        return None

    def step(self, state: Hashable, input: Any, output: Any) -> tuple[bool, Hashable]:
        match input:
            case ("read",):
                return output is UNKNOWN or output == state, state
            case ("write", value):
                return True, value
            case ("cas", expected, new):
                swaps = state == expected
                return output is UNKNOWN or output is swaps, new if swaps else state
        raise ValueError(f"register model: not an operation: {input!r}")

    def describe_operation(self, input: Any, output: Any) -> str:
        match input:
            case ("read",):
                return "read()" + _shown_output(output, f" -> {'nil' if output is None else output!r}")
            case ("write", value):
                return f"write({value!r})" + _shown_output(output, "")
            case ("cas", expected, new):
                return f"cas({expected!r}, {new!r})" + _shown_output(output, " -> ok" if output else " -> fail")
        return repr(input)

    def describe_state(self, state: Hashable) -> str:
        return "nil (absent)" if state is None else repr(state)


class KVModel(Model):
    """A map from string keys to string values; every key starts as ``""`` (see kv.py).

    Keys never affect each other, so the history is split by key and each key is checked as a
    register of its own: the state is one string.
    """

    def init(self) -> Hashable:
        return ""

    def step(self, state: Hashable, input: Any, output: Any) -> tuple[bool, Hashable]:
        assert isinstance(state, str), f"kv model: the state of one key is a string, not {state!r}"
        match input:
            case ("get", _):
                _require(output is UNKNOWN or isinstance(output, str), "get answers a str", input, output)
                return output is UNKNOWN or output == state, state
            case ("put", _, value):
                return True, value
            case ("append", _, value):
                return True, state + value
            case ("cas", _, expected, new):
                _require(output is UNKNOWN or isinstance(output, bool), "cas answers True or False", input, output)
                swaps = state == expected
                return output is UNKNOWN or output is swaps, new if swaps else state
        raise ValueError(f"kv model: not an operation: {input!r}")

    def describe_operation(self, input: Any, output: Any) -> str:
        match input:
            case ("get", key):
                return f"get({key!r})" + _shown_output(output, f" -> {output!r}")
            case ("put" | "append" as name, key, value):
                return f"{name}({key!r}, {value!r})" + _shown_output(output, "")
            case ("cas", key, expected, new):
                return f"cas({key!r}, {expected!r} -> {new!r})" + _shown_output(output, f" -> {output}")
        return repr(input)

    def partition(self, history: Sequence[Operation]) -> list[list[Operation]]:
        by_key: dict[str, list[Operation]] = {}
        for op in history:
            by_key.setdefault(op.input[1], []).append(op)
        return [by_key[key] for key in sorted(by_key)]

    def describe_partition(self, operations: Sequence[Operation]) -> str:
        return f"key {operations[0].input[1]!r}" if operations else "an empty key"


register_model = RegisterModel()
kv_model = KVModel()
kv_cas_model = kv_model  # one model serves both: the reference logs simply never use cas


# ---------------------------------------------------------------------------------------------
# Reference log formats: porcupine's test histories (one call or return per line, per client)
# ---------------------------------------------------------------------------------------------


class HistoryFormatError(ValueError):
    """A line of a history file that cannot be read; ``line`` is its 1-based number."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


class _Pending:
    """Pairs each call with its completion; one open call per client at a time."""

    def __init__(self) -> None:
        self.open: dict[int, tuple[int, Any]] = {}  # client -> (line of the call, input)
        self.ops: list[Operation] = []

    def invoke(self, line: int, client: int, input: Any) -> None:
        if client in self.open:
            raise HistoryFormatError(line, f"process {client} invokes again before its call on line "
                                           f"{self.open[client][0]} completed")
        self.open[client] = (line, input)

    def complete(self, line: int, client: int, name: str) -> tuple[int, Any]:
        """Close the open call of ``client``, which must be a ``name`` call: (its line, its input)."""
        if client not in self.open:
            raise HistoryFormatError(line, f"process {client} completes :{name} but has no open call")
        call_line, input = self.open.pop(client)
        if input[0] != name:
            raise HistoryFormatError(line, f"process {client} completes :{name} but called :{input[0]} "
                                           f"on line {call_line}")
        return call_line, input

    def record(self, client: int, input: Any, output: Any, call_line: int, ret: float) -> None:
        self.ops.append(Operation(client, input, output, float(call_line), ret))

    def history(self) -> list[Operation]:
        # Calls still open at the end of the file have an unknown outcome.
        for client, (call_line, input) in self.open.items():
            self.record(client, input, UNKNOWN, call_line, math.inf)
        self.open.clear()
        return sorted(self.ops, key=lambda op: op.call)


def _lines(text: str) -> Iterable[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


_ETCD_LINE = re.compile(r"INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(\w+)\s+:(\w+)\s+(.+)")
_ETCD_PAIR = re.compile(r"\[(-?\d+)\s+(-?\d+)\]")


def _etcd_value(line: int, name: str, text: str) -> Any:
    """The argument of an etcd operation: ``nil``, an integer, or ``[from to]`` for cas."""
    if name == "cas":
        pair = _ETCD_PAIR.fullmatch(text)
        if pair is None:
            raise HistoryFormatError(line, f":cas expects [FROM TO], got {text!r}")
        return int(pair[1]), int(pair[2])
    if text == "nil" and name == "read":
        return None
    if re.fullmatch(r"-?\d+", text) is None:
        raise HistoryFormatError(line, f":{name} expects an integer{' or nil' if name == 'read' else ''}, "
                                       f"got {text!r}")
    return int(text)


def parse_etcd_log(text: str) -> list[Operation]:
    """Read a Jepsen etcd log into ``register_model`` operations, one time unit per line.

    ``:ok`` completes normally and ``:fail :cas [a b]`` answers False. A failed read constrains
    nothing (its output is UNKNOWN). Every other completion (``:info``, a failed write, a
    timed-out cas) and every call left open has an unknown outcome (ret = inf).
    """
    pending = _Pending()
    for line, content in _lines(text):
        parsed = _ETCD_LINE.fullmatch(content)
        if parsed is None:
            raise HistoryFormatError(line, f"not a jepsen.util operation line: {content[:80]!r}")
        client, kind, name, value = int(parsed[1]), parsed[2], parsed[3], parsed[4].strip()
        if name not in ("read", "write", "cas"):
            raise HistoryFormatError(line, f"unknown operation :{name} (expected :read, :write or :cas)")
        if kind == "invoke":
            argument = _etcd_value(line, name, value)
            if name == "read" and argument is not None:
                raise HistoryFormatError(line, f":invoke :read takes nil, got {value!r}")
            if name == "read":
                pending.invoke(line, client, ("read",))
            else:
                pending.invoke(line, client, ("cas", *argument) if name == "cas" else ("write", argument))
            continue
        if kind not in ("ok", "fail", "info"):
            raise HistoryFormatError(line, f"unknown type :{kind} (expected :invoke, :ok, :fail or :info)")
        call_line, input = pending.complete(line, client, name)
        if kind == "ok" or (kind == "fail" and name == "cas" and value != ":timed-out"):
            answer = _etcd_value(line, name, value)
            # Jepsen repeats the arguments of a write or cas in its completion.
            if name != "read" and answer != (input[1:] if name == "cas" else input[1]):
                raise HistoryFormatError(line, f"process {client} completes :{name} {value} but called it with "
                                               f"{input[1:]} on line {call_line}")
            output = answer if name == "read" else (kind == "ok") if name == "cas" else None
            pending.record(client, input, output, call_line, line)
        elif kind == "fail" and name == "read":
            pending.record(client, input, UNKNOWN, call_line, line)
        else:
            pending.record(client, input, UNKNOWN, call_line, math.inf)
    return pending.history()


_KV_STRING = r'"((?:[^"\\]|\\.)*)"'
_KV_LINE = re.compile(
    r"\{:process\s+(\d+),\s*:type\s+:(\w+),\s*:f\s+:(\w+),\s*:key\s+" + _KV_STRING
    + r",\s*:value\s+(nil|" + _KV_STRING + r")\}"
)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_kv_log(text: str) -> list[Operation]:
    """Read a kv log (Clojure maps, one per line) into ``kv_model`` operations.

    Calls without an ``:ok`` (left open, or completed by ``:info`` or ``:fail``) have an
    unknown outcome.
    """
    pending = _Pending()
    for line, content in _lines(text):
        parsed = _KV_LINE.fullmatch(content)
        if parsed is None:
            raise HistoryFormatError(line, "not a {:process P, :type T, :f F, :key \"K\", :value V} map: "
                                           f"{content[:80]!r}")
        client, kind, name = int(parsed[1]), parsed[2], parsed[3]
        key, value = _unescape(parsed[4]), None if parsed[6] is None else _unescape(parsed[6])
        if name not in ("get", "put", "append"):
            raise HistoryFormatError(line, f"unknown operation :{name} (expected :get, :put or :append)")
        if kind == "invoke":
            if (name == "get") != (value is None):
                wanted = "nil" if name == "get" else "a string"
                raise HistoryFormatError(line, f":invoke :{name} needs :value {wanted}")
            pending.invoke(line, client, ("get", key) if name == "get" else (name, key, value))
            continue
        if kind not in ("ok", "info", "fail"):
            raise HistoryFormatError(line, f"unknown type :{kind} (expected :invoke or :ok)")
        call_line, input = pending.complete(line, client, name)
        if input[1] != key:
            raise HistoryFormatError(line, f"process {client} completes key {key!r} but called key {input[1]!r} "
                                           f"on line {call_line}")
        if kind != "ok":
            pending.record(client, input, UNKNOWN, call_line, math.inf)
        elif name == "get" and value is None:
            raise HistoryFormatError(line, ":ok :get needs the value read, got nil")
        else:
            pending.record(client, input, value if name == "get" else None, call_line, line)
    return pending.history()
