"""The linearizability checker: reference verdicts, model semantics, explanations and parsers.

The reference histories (porcupine's test data, Jepsen's etcd runs) live outside the project,
in ../shared/data/linearizability; without them these tests skip, except in CI where they fail.
Measured on CPython 3.11: the whole set (52 etcd + 4 kv files) checks in about 2 s; the slowest
file is etcd_002.log, about 1.6 s.
"""

from __future__ import annotations

import csv
import inspect
import math
import os
import random
import time
from collections.abc import Hashable
from typing import Any

import pytest
from conftest import shared_data_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.lincheck import fifty_client_history
from raft.checkers.linearizability import (
    DEFAULT_MAX_MEMORY,
    UNKNOWN,
    CheckResult,
    HistoryFormatError,
    Model,
    Operation,
    check_operations,
    kv_cas_model,
    kv_model,
    parse_etcd_log,
    parse_kv_log,
    register_model,
)

DATA = shared_data_dir() / "linearizability"
INF = math.inf
HYPOTHESIS = settings(max_examples=200, derandomize=True, database=None, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])


def reference_rows(kind: str) -> list[Any]:
    """One pytest parameter per row of DATA/kind/expected.csv, or one placeholder if absent."""
    table = DATA / kind / "expected.csv"
    if not table.is_file():
        return [pytest.param(None, False, id=f"{kind}-reference-data-missing")]
    with table.open(newline="") as file:
        return [pytest.param(row["file"], row["linearizable"] == "true", id=row["file"])
                for row in csv.DictReader(file)]


def require_reference_data() -> None:
    message = f"reference histories not found at {DATA} (see the project README)"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI must run them")
    pytest.skip(message)


def op(client: int, input: Any, output: Any, call: float, ret: float) -> Operation:
    return Operation(client, input, output, call, ret)


def verdict(model: Model, *history: Operation) -> bool | None:
    return check_operations(model, history).linearizable


# ---------------------------------------------------------------------------------------------
# Reference histories
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), reference_rows("etcd"))
def test_etcd_reference_history_gets_its_expected_verdict(name: str | None, expected: bool) -> None:
    """Each of Jepsen's etcd histories is judged as expected.csv says."""
    if name is None:
        require_reference_data()
        return
    history = parse_etcd_log((DATA / "etcd" / name).read_text())
    started = time.perf_counter()
    result = check_operations(register_model, history)
    assert result.linearizable is expected, f"{name} in {time.perf_counter() - started:.2f}s"
    assert bool(result.explanation) is not expected


@pytest.mark.parametrize(("name", "expected"), reference_rows("kv"))
def test_kv_reference_history_gets_its_expected_verdict(name: str | None, expected: bool) -> None:
    """Each kv history (split by key) is judged as expected.csv says."""
    if name is None:
        require_reference_data()
        return
    history = parse_kv_log((DATA / "kv" / name).read_text())
    result = check_operations(kv_model, history)
    assert result.linearizable is expected
    if not expected:
        assert result.explanation.startswith("Key ")


# ---------------------------------------------------------------------------------------------
# The register model on small hand-made histories
# ---------------------------------------------------------------------------------------------


def test_sequential_history_is_linearizable() -> None:
    """Operations that do not overlap are checked in the order they ran."""
    assert verdict(register_model,
                   op(0, ("read",), None, 0, 1),
                   op(0, ("write", 1), None, 2, 3),
                   op(1, ("read",), 1, 4, 5),
                   op(1, ("write", 2), None, 6, 7),
                   op(0, ("read",), 2, 8, 9)) is True


def test_sequential_history_with_a_wrong_read_is_not() -> None:
    """A read that returns a value the register never held cannot be ordered anywhere."""
    assert verdict(register_model, op(0, ("write", 1), None, 0, 1), op(0, ("read",), 2, 2, 3)) is False


def test_a_read_overlapping_a_write_may_see_either_value() -> None:
    """A read concurrent with a write may take effect before or after it."""
    write = op(0, ("write", 1), None, 0, 10)
    assert verdict(register_model, write, op(1, ("read",), 1, 2, 3)) is True
    assert verdict(register_model, write, op(1, ("read",), None, 2, 3)) is True


def test_concurrent_reads_cannot_see_the_write_undone() -> None:
    """Once one read has seen a write, a read that starts later cannot miss it."""
    assert verdict(register_model,
                   op(0, ("write", 1), None, 0, 10),
                   op(1, ("read",), 1, 1, 2),
                   op(2, ("read",), None, 3, 4)) is False


def test_stale_read_is_not_linearizable() -> None:
    """A read that starts after a write returned must not see the value before it."""
    assert verdict(register_model,
                   op(0, ("write", 1), None, 0, 1),
                   op(0, ("write", 2), None, 2, 3),
                   op(1, ("read",), 1, 4, 5)) is False


def test_unknown_write_that_must_have_happened() -> None:
    """A timed-out write explains a later read of its value: it took effect after all."""
    assert verdict(register_model,
                   op(0, ("write", 1), UNKNOWN, 0, INF),
                   op(1, ("read",), 1, 5, 6)) is True


def test_unknown_write_that_must_not_have_happened() -> None:
    """A timed-out write may never take effect: reads long after it may still see the old value."""
    assert verdict(register_model,
                   op(0, ("write", 7), None, 0, 1),
                   op(1, ("write", 1), UNKNOWN, 2, INF),
                   op(2, ("read",), 7, 5, 6),
                   op(2, ("read",), 7, 10, 11)) is True


def test_unknown_write_takes_effect_at_most_once() -> None:
    """Seen, then unseen, then seen again: one write cannot explain both sightings."""
    assert verdict(register_model,
                   op(0, ("write", 1), UNKNOWN, 0, INF),
                   op(1, ("read",), 1, 2, 3),
                   op(1, ("read",), None, 4, 5),
                   op(1, ("read",), 1, 6, 7)) is False


def test_unknown_write_cannot_take_effect_before_its_call() -> None:
    """An operation of unknown outcome still starts when it was called."""
    assert verdict(register_model,
                   op(0, ("read",), 1, 0, 1),
                   op(1, ("write", 1), UNKNOWN, 5, INF)) is False


def test_output_of_an_operation_with_no_return_is_ignored() -> None:
    """With ret = inf the output is unknown whatever the record says; the simulator may leave None."""
    assert verdict(register_model,
                   op(0, ("cas", None, 1), False, 0, INF),
                   op(1, ("read",), 1, 2, 3)) is True


def test_failed_read_constrains_nothing() -> None:
    """A read whose answer was lost (UNKNOWN, finite return) fits any state."""
    assert verdict(register_model,
                   op(0, ("write", 3), None, 0, 1),
                   op(1, ("read",), UNKNOWN, 2, 3)) is True


def test_cas_success_and_failure() -> None:
    """cas swaps only when the register holds the expected value, and says so."""
    assert verdict(register_model,
                   op(0, ("write", 1), None, 0, 1),
                   op(0, ("cas", 1, 2), True, 2, 3),
                   op(0, ("cas", 1, 3), False, 4, 5),
                   op(0, ("read",), 2, 6, 7)) is True
    assert verdict(register_model, op(0, ("write", 1), None, 0, 1), op(0, ("cas", 1, 2), False, 2, 3)) is False
    assert verdict(register_model, op(0, ("cas", 1, 2), True, 0, 1)) is False  # the register starts absent
    assert verdict(register_model, op(0, ("cas", None, 2), True, 0, 1), op(0, ("read",), 2, 2, 3)) is True


def test_concurrent_cas_only_one_can_win() -> None:
    """Two concurrent cas from the same value: at most one of them swaps."""
    both = (op(0, ("write", 0), None, 0, 1), op(1, ("cas", 0, 1), True, 2, 5), op(2, ("cas", 0, 2), True, 3, 6))
    assert verdict(register_model, *both) is False
    one = (both[0], both[1], op(2, ("cas", 0, 2), False, 3, 6), op(0, ("read",), 1, 7, 8))
    assert verdict(register_model, *one) is True


def test_empty_history_is_linearizable() -> None:
    assert verdict(register_model) is True
    assert verdict(kv_model) is True


def test_operation_times_are_validated() -> None:
    """A return before its call is a broken record, not a verdict."""
    with pytest.raises(ValueError, match="call <= ret"):
        check_operations(register_model, [op(0, ("read",), None, 5, 4)])


def test_linearizable_result_gives_a_valid_order() -> None:
    """The order found for a linearizable history respects real time and replays in the model."""
    history = [op(0, ("write", 1), None, 0, 10), op(1, ("read",), None, 1, 2), op(2, ("read",), 1, 3, 4)]
    result = check_operations(register_model, history)
    assert result.linearizations == ((history[1], history[0], history[2]),)


def test_timeout_gives_unknown() -> None:
    """A search that runs out of time says "unknown", not yes or no."""
    # Eighteen concurrent writes of unknown outcome and a read of a value none of them wrote:
    # the search must try every subset of the writes before it can say no.
    history = [op(c, ("write", c), UNKNOWN, c, INF) for c in range(18)]
    history.append(op(99, ("read",), 99, 50, 51))
    started = time.perf_counter()
    result = check_operations(register_model, history, timeout=0.05)
    assert result == CheckResult(None)
    assert time.perf_counter() - started < 2


# ---------------------------------------------------------------------------------------------
# Bounds: parts take turns, budgets end a search with "unknown", explanations cost no search
# ---------------------------------------------------------------------------------------------


def hard_key(key: str = "a", appends: int = 16) -> list[Operation]:
    """Concurrent appends of unknown outcome and a get of a value none of them wrote.

    Every order of every subset of the appends is a different string, and the search must try
    them all before it can say no: far more than any budget allows.
    """
    return [*(op(c, ("append", key, f"<{c}>"), UNKNOWN, c, INF) for c in range(appends)),
            op(99, ("get", key), "never written", 50, 51)]


def stale_read_key(key: str = "b") -> list[Operation]:
    """A read that starts after a put returned and still sees the value before it."""
    return [op(0, ("put", key, "1"), None, 0, 1), op(0, ("put", key, "2"), None, 2, 3), op(1, ("get", key), "1", 4, 5)]


def test_a_failing_part_is_found_beside_a_hopeless_one() -> None:
    """A part that fails quickly ends the check, even when a part before it would never finish."""
    result = check_operations(kv_model, hard_key("a") + stale_read_key("b"))
    assert result.linearizable is False
    assert result.failed_partition == 1
    # Key 'a' had one turn of 1,024 steps while key 'b' failed: the parts take turns.
    assert result.steps < 2 * 1024
    assert result.peak_entries < 1024


def test_fifty_client_bad_history_is_refuted_within_a_small_budget() -> None:
    """A 50-client kv history with a few stale reads is refuted in under 100,000 steps.

    The shape of porcupine's c50-bad: searched alone, key '0' of this one takes 1.6 million
    steps to refute and keys '1' and '2' are beyond the search, but key '5' fails within its
    first turn of 1,024 steps.
    """
    history = parse_kv_log(fifty_client_history(0, bad=True))
    result = check_operations(kv_model, history, max_steps=100_000)
    assert result.linearizable is False, result.exhausted
    assert result.explanation.startswith("Key ")
    assert result.steps < 100_000


def test_tiny_budgets_give_unknown_not_an_error() -> None:
    """A budget too small for any search still returns a result: unknown, naming the budget spent."""
    history = hard_key()
    by_steps = check_operations(kv_model, history, max_steps=1)
    by_memory = check_operations(kv_model, history, max_memory=1)
    assert (by_steps.linearizable, by_steps.exhausted) == (None, "steps")
    assert (by_memory.linearizable, by_memory.exhausted) == (None, "memory")
    assert by_steps == by_memory == CheckResult(None)  # the cost is not part of what a result says


def test_memory_budget_bounds_the_memo() -> None:
    """With a memory budget, the memo stops growing within one turn of 1,024 entries of it."""
    budget = 4 * 2**20
    result = check_operations(kv_model, hard_key(), max_memory=budget)
    assert (result.linearizable, result.exhausted) == (None, "memory")
    assert budget < result.peak_memory < budget + 2**20
    assert result.peak_entries > 10_000


def test_memory_budget_is_on_by_default() -> None:
    """A check given no budget at all is still bounded: by the default memory budget, under a gigabyte."""
    default = inspect.signature(check_operations).parameters["max_memory"].default
    assert default == DEFAULT_MAX_MEMORY <= 2**30


def test_explanation_costs_no_search_of_its_own() -> None:
    """The same failure and explanation come out with a step budget of exactly the check's own steps."""
    history = parse_kv_log(fifty_client_history(0, bad=True))
    first = check_operations(kv_model, history)
    again = check_operations(kv_model, history, max_steps=first.steps)
    assert first.linearizable is False
    assert again == first
    # Bounded: a header, at most five operations of the prefix, a line, and one operation per client.
    assert len(first.explanation.splitlines()) <= 3 + 5 + 50


# ---------------------------------------------------------------------------------------------
# The key-value model
# ---------------------------------------------------------------------------------------------


def test_kv_keys_start_empty_and_append_concatenates() -> None:
    """get of a new key is "", append concatenates, put replaces."""
    assert verdict(kv_model,
                   op(0, ("get", "k"), "", 0, 1),
                   op(0, ("append", "k", "a"), None, 2, 3),
                   op(0, ("append", "k", "b"), None, 4, 5),
                   op(0, ("get", "k"), "ab", 6, 7),
                   op(0, ("put", "k", "z"), None, 8, 9),
                   op(0, ("get", "k"), "z", 10, 11)) is True


def test_kv_concurrent_appends_fix_one_order() -> None:
    """Two concurrent appends may land in either order, but every reader sees the same one."""
    appends = (op(0, ("append", "k", "a"), None, 0, 10), op(1, ("append", "k", "b"), None, 0, 10))
    assert verdict(kv_model, *appends, op(2, ("get", "k"), "ba", 11, 12)) is True
    assert verdict(kv_model, *appends, op(2, ("get", "k"), "ba", 11, 12), op(2, ("get", "k"), "ab", 13, 14)) is False


def test_kv_cas() -> None:
    """kv cas swaps only on an exact match and reports whether it did."""
    assert kv_cas_model is kv_model
    assert verdict(kv_model,
                   op(0, ("cas", "k", "", "x"), True, 0, 1),
                   op(0, ("cas", "k", "", "y"), False, 2, 3),
                   op(0, ("get", "k"), "x", 4, 5)) is True
    assert verdict(kv_model, op(0, ("cas", "k", "", "x"), False, 0, 1)) is False


def test_kv_keys_are_checked_independently() -> None:
    """A history is split by key; the explanation names the key that failed."""
    result = check_operations(kv_model, [
        op(0, ("put", "a", "1"), None, 0, 1),
        op(0, ("put", "b", "1"), None, 2, 3),
        op(1, ("get", "a"), "1", 4, 5),
        op(1, ("get", "b"), "", 6, 7),
    ])
    assert result.linearizable is False
    assert result.failed_partition == 1
    assert result.explanation.startswith("Key 'b' (2 of 4 operations, part 2 of 2)")


def test_unknown_operations_must_be_accepted_by_every_model() -> None:
    """UNKNOWN output fits any state: the contract that lets an operation "never happen"."""
    for model, inputs, states in (
        (register_model, [("read",), ("write", 1), ("cas", 1, 2), ("cas", None, 2)], [None, 1, 2]),
        (kv_model, [("get", "k"), ("put", "k", "v"), ("append", "k", "v"), ("cas", "k", "", "v")], ["", "v"]),
    ):
        for state in states:
            for input in inputs:
                assert model.step(state, input, UNKNOWN)[0], (model, state, input)


def test_model_rejects_an_unknown_operation_name() -> None:
    with pytest.raises(ValueError, match="not an operation"):
        check_operations(kv_model, [op(0, ("delete", "k"), None, 0, 1)])


def test_kv_model_rejects_a_badly_recorded_answer() -> None:
    """A cas recorded without True/False, or a get without a string, is a recording bug: say so."""
    with pytest.raises(ValueError, match=r"cas answers True or False, but .* output None"):
        check_operations(kv_model, [op(0, ("cas", "k", "", "x"), None, 0, 1)])
    with pytest.raises(ValueError, match="get answers a str"):
        check_operations(kv_model, [op(0, ("get", "k"), None, 0, 1)])


# ---------------------------------------------------------------------------------------------
# Explanations
# ---------------------------------------------------------------------------------------------


def test_explanation_names_the_offending_operation() -> None:
    """For a stale read, the explanation shows the prefix and the read that cannot follow it."""
    history = [op(0, ("write", 1), None, 0, 1), op(0, ("write", 2), None, 2, 3), op(1, ("read",), 1, 4, 5)]
    result = check_operations(register_model, history)
    assert result.linearizable is False
    assert result.prefix == (history[0], history[1])
    assert result.stuck == (history[2],)
    assert result.explanation.splitlines() == [
        "The history (3 operations) has no valid order.",
        "The longest linearizable prefix has 2 operation(s) and is:",
        "  [0, 1] client 0: write(1)",
        "  [2, 3] client 0: write(2)",
        "leaving the state 2. None of these can come next:",
        "  [4, 5] client 1: read() -> 1",
    ]


def test_explanation_lists_every_operation_that_could_have_come_next() -> None:
    """When two concurrent operations are both impossible, both are named, unknown ones with ∞."""
    history = [op(0, ("read",), 5, 0, 3), op(1, ("cas", 7, 8), True, 1, 4), op(2, ("write", 9), None, 5, INF)]
    result = check_operations(register_model, history)
    assert result.prefix == ()
    assert result.stuck == (history[0], history[1])
    assert "From the initial state nil (absent), none of these can come first:" in result.explanation
    assert "[0, 3] client 0: read() -> 5" in result.explanation
    assert "[1, 4] client 1: cas(7, 8) -> ok" in result.explanation


def test_explanation_marks_an_unknown_outcome() -> None:
    """An operation that never returned shows an open interval and an unknown answer."""
    history = [op(2, ("write", 9), None, 0, INF), op(0, ("read",), 4, 1, 2)]
    lines = check_operations(register_model, history).explanation.splitlines()
    assert "  [0, ∞) client 2: write(9) -> ?" in lines


def test_explanation_shows_only_the_end_of_a_long_prefix() -> None:
    """A long prefix is cut to its last five operations, where the trouble is."""
    history = [op(0, ("write", k), None, 2 * k, 2 * k + 1) for k in range(20)]
    history.append(op(1, ("read",), 3, 100, 101))
    lines = check_operations(register_model, history).explanation.splitlines()
    assert lines[1] == "The longest linearizable prefix has 20 operation(s) and ends with:"
    assert lines[2:7] == [f"  [{2 * k}, {2 * k + 1}] client 0: write({k})" for k in range(15, 20)]
    assert lines[-1] == "  [100, 101] client 1: read() -> 3"


# ---------------------------------------------------------------------------------------------
# Properties: histories produced by a correct register are always linearizable
# ---------------------------------------------------------------------------------------------

register_inputs = st.one_of(
    st.just(("read",)),
    st.tuples(st.just("write"), st.integers(0, 3)),
    st.tuples(st.just("cas"), st.one_of(st.none(), st.integers(0, 3)), st.integers(0, 3)),
)
kv_inputs = st.one_of(
    st.tuples(st.just("get"), st.sampled_from("ab")),
    st.tuples(st.sampled_from(["put", "append"]), st.sampled_from("ab"), st.sampled_from(["", "x", "y"])),
    st.tuples(st.just("cas"), st.sampled_from("ab"), st.sampled_from(["", "x", "xy"]), st.sampled_from(["x", "y"])),
)


def as_kv(input: tuple[Any, ...]) -> tuple[Any, ...]:
    """A register input as the same operation on key "r", so that one store serves both models."""
    match input:
        case ("read",):
            return ("get", "r")
        case ("write", value):
            return ("put", "r", value)
        case ("cas", expected, new):
            return ("cas", "r", expected, new)
    return input


class Store:
    """A correct, sequential store written independently of the models: the system under test."""

    def __init__(self, absent: Any) -> None:
        self.values: dict[Any, Any] = {}
        self.absent = absent

    def apply(self, input: tuple[Any, ...]) -> Any:
        name, key, *rest = as_kv(input)
        current = self.values.get(key, self.absent)
        if name == "get":
            return current
        if name == "put":
            self.values[key] = rest[0]
            return None
        if name == "append":
            self.values[key] = current + rest[0]
            return None
        expected, new = rest
        if current == expected:
            self.values[key] = new
            return True
        return False


def replays(model: Model, order: tuple[Operation, ...]) -> bool:
    state: Hashable = model.init()
    for done in order:
        ok, state = model.step(state, done.input, done.output if done.outcome_known else UNKNOWN)
        if not ok:
            return False
    return all(not (b.ret < a.call) for k, a in enumerate(order) for b in order[k + 1:])


@HYPOTHESIS
@given(st.sampled_from(["register", "kv"]), st.data())
def test_sequential_program_is_linearizable(which: str, data: st.DataObject) -> None:
    """Running a random program one operation at a time on a correct store is linearizable."""
    model, inputs, store = ((register_model, register_inputs, Store(None)) if which == "register"
                            else (kv_model, kv_inputs, Store("")))
    program = data.draw(st.lists(inputs, max_size=30))
    history = [op(0, input, store.apply(input), 2 * k, 2 * k + 1) for k, input in enumerate(program)]
    result = check_operations(model, history)
    assert result.linearizable is True, result.explanation
    assert all(replays(model, order) for order in result.linearizations)


def concurrent_history(seed: int, inputs: list[tuple[Any, ...]], store: Store) -> list[Operation]:
    """Clients run ``inputs`` concurrently; each takes effect at a random instant in its interval.

    The last operation of some clients never returns: it takes effect at a random instant
    after its call, or never, and is recorded with ret = inf and a meaningless output.
    """
    rng = random.Random(seed)
    clients = rng.randint(1, 5)
    clock = [rng.uniform(0, 3) for _ in range(clients)]
    planned: list[tuple[float, int, float, float, tuple[Any, ...]]] = []  # (instant, client, call, ret, input)
    open_ended: set[int] = set()
    for k, input in enumerate(inputs):
        client = k % clients
        if client in open_ended:
            continue
        call = clock[client] + rng.uniform(0, 2)
        ret = call + rng.uniform(0.01, 4)
        instant = rng.uniform(call, ret)
        if rng.random() < 0.1:  # the client times out and never learns the outcome
            open_ended.add(client)
            ret = INF
            instant = instant if rng.random() < 0.5 else INF
        clock[client] = ret
        planned.append((instant, client, call, ret, input))
    history = []
    for instant, client, call, ret, input in sorted(planned, key=lambda p: p[0]):
        output = store.apply(input) if instant != INF else None
        history.append(op(client, input, output if ret != INF else "garbage", call, ret))
    return history


@HYPOTHESIS
@given(st.sampled_from(["register", "kv"]), st.integers(0, 2**32), st.data())
def test_concurrent_history_of_a_correct_store_is_linearizable(which: str, seed: int, data: st.DataObject) -> None:
    """A store whose operations take effect atomically between call and return is linearizable."""
    model, inputs, store = ((register_model, register_inputs, Store(None)) if which == "register"
                            else (kv_model, kv_inputs, Store("")))
    history = concurrent_history(seed, data.draw(st.lists(inputs, max_size=25)), store)
    result = check_operations(model, history)
    assert result.linearizable is True, f"seed {seed}:\n{result.explanation}"
    assert all(replays(model, order) for order in result.linearizations)


@HYPOTHESIS
@given(st.integers(0, 2**32), st.lists(register_inputs, min_size=1, max_size=25))
def test_reading_a_value_never_written_is_caught(seed: int, inputs: list[tuple[Any, ...]]) -> None:
    """Corrupt one read of a correct history to a value nobody wrote: the checker says no."""
    history = concurrent_history(seed, [*inputs, ("read",)], Store(None))
    reads = [k for k, o in enumerate(history) if o.input == ("read",) and o.outcome_known]
    if not reads:
        return
    k = reads[seed % len(reads)]
    history[k] = op(history[k].client, ("read",), 42, history[k].call, history[k].ret)
    result = check_operations(register_model, history)
    assert result.linearizable is False
    assert history[k] not in result.prefix  # the model refuses it in every state


# ---------------------------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------------------------

ETCD_SAMPLE = """\
INFO  jepsen.util - 0\t:invoke\t:write\t3
INFO  jepsen.util - 1\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:ok\t:write\t3
INFO  jepsen.util - 1\t:ok\t:read\t3
INFO  jepsen.util - 2   :invoke :cas    [3 4]
INFO  jepsen.util - 2   :fail   :cas    [3 4]
INFO  jepsen.util - 0\t:invoke\t:cas\t[3 5]
INFO  jepsen.util - 0\t:info\t:cas\t:timed-out
INFO  jepsen.util - 1\t:invoke\t:read\tnil
INFO  jepsen.util - 1\t:fail\t:read\t:timed-out
INFO  jepsen.util - 3\t:invoke\t:write\t7

"""


def test_parse_etcd_log() -> None:
    """Each call is paired with its completion; times are line numbers; unknowns follow the README."""
    assert parse_etcd_log(ETCD_SAMPLE) == [
        op(0, ("write", 3), None, 1, 3),
        op(1, ("read",), 3, 2, 4),
        op(2, ("cas", 3, 4), False, 5, 6),
        op(0, ("cas", 3, 5), UNKNOWN, 7, INF),  # :info: may or may not have happened
        op(1, ("read",), UNKNOWN, 9, 10),  # a failed read constrains nothing
        op(3, ("write", 7), UNKNOWN, 11, INF),  # still open at the end of the file
    ]


def test_parse_kv_log() -> None:
    """kv maps become kv_model tuples; escaped quotes survive; an open call has an unknown outcome."""
    text = "\n".join([
        '{:process 0, :type :invoke, :f :put, :key "k", :value "say \\"hi\\""}',
        '{:process 1, :type :invoke, :f :get, :key "k", :value nil}',
        '{:process 0, :type :ok, :f :put, :key "k", :value "say \\"hi\\""}',
        '{:process 1, :type :ok, :f :get, :key "k", :value ""}',
        '{:process 1, :type :invoke, :f :append, :key "j", :value "x"}',
    ])
    assert parse_kv_log(text) == [
        op(0, ("put", "k", 'say "hi"'), None, 1, 3),
        op(1, ("get", "k"), "", 2, 4),
        op(1, ("append", "j", "x"), UNKNOWN, 5, INF),
    ]


@pytest.mark.parametrize(("text", "line", "message"), [
    ("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nhello\n", 2, "not a jepsen.util operation line: 'hello'"),
    ("INFO  jepsen.util - 0\t:ok\t:read\t1\n", 1, "process 0 completes :read but has no open call"),
    ("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:invoke\t:read\tnil\n", 2,
     "process 0 invokes again before its call on line 1 completed"),
    ("INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\nINFO  jepsen.util - 0\t:ok\t:write\t1\n", 3,
     "process 0 completes :write but called :read on line 1"),
    ("INFO  jepsen.util - 0\t:invoke\t:write\tx\n", 1, ":write expects an integer, got 'x'"),
    ("INFO  jepsen.util - 0\t:invoke\t:cas\t[1]\n", 1, ":cas expects [FROM TO], got '[1]'"),
    ("INFO  jepsen.util - 0\t:invoke\t:delete\t1\n", 1, "unknown operation :delete"),
    ("INFO  jepsen.util - 0\t:invoke\t:write\t1\nINFO  jepsen.util - 0\t:ok\t:write\t2\n", 2,
     "process 0 completes :write 2 but called it with (1,) on line 1"),
])
def test_etcd_parse_errors_name_the_line(text: str, line: int, message: str) -> None:
    """A malformed etcd log raises a ValueError that gives the line number and the problem."""
    with pytest.raises(HistoryFormatError) as caught:
        parse_etcd_log(text)
    assert isinstance(caught.value, ValueError)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"line {line}: {message}")


@pytest.mark.parametrize(("text", "line", "message"), [
    ('{:process 0, :type :invoke, :f :get, :key "k"}', 1, "not a {:process P, :type T, :f F, :key"),
    ('{:process 0, :type :invoke, :f :get, :key "k", :value "v"}', 1, ":invoke :get needs :value nil"),
    ('{:process 0, :type :invoke, :f :get, :key "k", :value nil}\n'
     '{:process 0, :type :ok, :f :get, :key "k", :value nil}', 2, ":ok :get needs the value read, got nil"),
    ('{:process 0, :type :invoke, :f :get, :key "k", :value nil}\n'
     '{:process 0, :type :ok, :f :get, :key "j", :value ""}', 2, "process 0 completes key 'j' but called key 'k'"),
    ('{:process 0, :type :invoke, :f :cas, :key "k", :value "v"}', 1, "unknown operation :cas"),
])
def test_kv_parse_errors_name_the_line(text: str, line: int, message: str) -> None:
    """A malformed kv log raises a ValueError that gives the line number and the problem."""
    with pytest.raises(ValueError, match=r"^line \d+: ") as caught:
        parse_kv_log(text)
    assert isinstance(caught.value, HistoryFormatError)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"line {line}: {message}")
