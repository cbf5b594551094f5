// Plain words for events: what happened, and why.
//
// The server sends events exactly as the simulation emitted them
// (raft/events.py lists every kind and its fields). This file turns one into
// a sentence a student can read aloud; the event's own `reason` field, when
// it has one, says why the node decided what it did.
"use strict";

const Words = (() => {
  const RPC_NAMES = {
    request_vote: "RequestVote",
    request_pre_vote: "PreVote",
    append_entries: "AppendEntries",
    heartbeat: "heartbeat",
    install_snapshot: "InstallSnapshot",
    timeout_now: "TimeoutNow",
  };

  // Short labels drawn on the travelling messages.
  const RPC_SHORT = {
    request_vote: "RV",
    request_pre_vote: "PV",
    append_entries: "AE",
    heartbeat: "HB",
    install_snapshot: "IS",
    timeout_now: "TN",
  };

  // Requests to the leader that are not state machine commands (see raft/testing.py).
  const ADMIN = /^(add_voter|remove_server|transfer_leadership|barrier|verify_leader)\b/;

  function rpcName(kind) {
    return RPC_NAMES[kind] || kind;
  }

  function phaseName(phase) {
    return phase === "pre_vote" ? "pre-vote" : "vote";
  }

  function entriesText(entries) {
    if (!entries || entries.length === 0) return "no entries";
    const first = entries[0][0];
    const last = entries[entries.length - 1][0];
    return first === last ? `entry ${first}` : `entries ${first}–${last}`;
  }

  // Returns {text, reason}: the sentence and the reason the event carries (may be "").
  function describe(ev) {
    const n = ev.node;
    const reason = ev.reason || "";
    const kind = ev.kind;
    switch (kind) {
      case "state":
        return { text: `${n} becomes ${ev.state} in term ${ev.term}`, reason };
      case "term":
        return { text: `${n} moves to term ${ev.term} (was ${ev.previous})`, reason };
      case "leader":
        return { text: ev.leader ? `${n} now knows ${ev.leader} as the leader` : `${n} no longer knows a leader`, reason };
      case "timer": {
        const window = `${(+ev.deadline).toFixed(3)}–${(+ev.deadline + +ev.timeout).toFixed(3)} s`;
        if (ev.fires_at === undefined) return { text: `${n} arms its ${ev.timer} timer: it fires at a random moment in ${window}`, reason };
        return { text: `${n} arms its ${ev.timer} timer: it will fire at ${(+ev.fires_at).toFixed(3)} s (drawn at random in ${window})`, reason };
      }
      case "election":
        return {
          text: `${n} starts a ${phaseName(ev.phase)} for term ${ev.term}; it needs ${ev.needed} votes` +
            (ev.last_log_index !== undefined ? ` (its last entry: index ${ev.last_log_index}, term ${ev.last_log_term})` : ""),
          reason,
        };
      case "election_timeout":
        return { text: `${n}'s election timer fired in term ${ev.term} before it won`, reason };
      case "vote":
        return {
          text: `${n} ${ev.granted ? "grants" : "refuses"} its ${phaseName(ev.phase)} to ${ev.candidate} for term ${ev.term}`,
          reason,
        };
      case "tally":
        return {
          text: `${n} counts ${ev.voter}'s ${phaseName(ev.phase)}: ${ev.granted ? "yes" : "no"} — ` +
            `${ev.granted_votes} of ${ev.needed} needed`,
          reason,
        };
      case "request_vote":
        return { text: `${n} is asked for its vote by ${ev.candidate} (term ${ev.term})`, reason };
      case "request_pre_vote":
        return { text: `${n} is asked for a pre-vote by ${ev.candidate} (term ${ev.term})`, reason };
      case "peer":
        return { text: ev.removed ? `${n} stops replicating to ${ev.peer}` : `${n} starts replicating to ${ev.peer}`, reason };
      case "heartbeat_failed":
        return { text: `${n} cannot reach ${ev.peer} with heartbeats`, reason };
      case "heartbeat_resumed":
        return { text: `${n} reaches ${ev.peer} with heartbeats again`, reason };
      case "rpc_send": {
        const msg = ev.msg || {};
        const label = ev.rpc === "append_entries" && ev.dir === "request" && msg.entries && msg.entries.length === 0
          ? "heartbeat (AppendEntries, no entries)" : rpcName(ev.rpc);
        let detail = "";
        if (ev.dir === "request" && ev.rpc === "append_entries" && msg.entries) {
          detail = ` — term ${msg.term}, prev ${msg.prev_log_entry}/${msg.prev_log_term}, ${entriesText(msg.entries)}, commit ${msg.leader_commit_index}`;
        } else if (ev.dir === "request" && ev.rpc === "install_snapshot") {
          detail = ` — term ${msg.term}, everything up to entry ${msg.last_log_index} (term ${msg.last_log_term}), ${msg.size} bytes`;
        } else if (ev.dir === "request" && msg.term !== undefined) {
          detail = ` — term ${msg.term}` + (msg.last_log_index !== undefined ? `, last log ${msg.last_log_index}/${msg.last_log_term}` : "") +
            (msg.leadership_transfer ? ", leadership transfer" : "");
        } else if (ev.dir === "request" && ev.rpc === "timeout_now") {
          detail = " — start an election now";
        }
        const what = ev.dir === "response" ? `its reply to ${label}` : label;
        const copies = ev.copies > 1 ? ` (${ev.copies} copies)` : "";
        return { text: `${n} → ${ev.to}: ${what}${detail}${copies}`, reason };
      }
      case "rpc_deliver":
        return { text: `${ev.from} → ${n}: ${ev.dir === "response" ? "reply to " : ""}${rpcName(ev.rpc)} arrives`, reason };
      case "rpc_drop":
        return { text: `${ev.from} → ${ev.to}: ${ev.dir === "response" ? "reply to " : ""}${rpcName(ev.rpc)} is lost`, reason };
      case "rpc_timeout":
        return { text: `${n} gave up waiting for ${ev.to}'s reply to ${rpcName(ev.rpc)}`, reason };
      case "append":
        return { text: `${n} appends ${entriesText(ev.entries)} to its log`, reason };
      case "truncate":
        return { text: `${n} deletes conflicting entries ${ev.first}–${ev.last} from its log`, reason };
      case "commit":
        return { text: `${n} moves its commit index to ${ev.index} (was ${ev.previous})`, reason };
      case "apply":
        return { text: `${n} applies entry ${ev.index} (${ev.type}, term ${ev.term}) to its state machine`, reason };
      case "configuration": {
        const servers = ((ev.configuration || {}).servers || []).map((s) => s.id + (s.suffrage ? " (non-voter)" : "")).join(" ");
        if (ev.which === "committed") return { text: `${n}'s committed configuration is now entry ${ev.index}: ${servers}`, reason };
        return {
          text: `${n}'s latest configuration is entry ${ev.index}: ${servers}`,
          reason: reason || "a server uses the newest configuration in its log, committed or not (thesis §4.1)",
        };
      }
      case "replication_rejected":
        if (ev.conflict_term) {
          return {
            text: `${n}: ${ev.peer} rejected AppendEntries: its entry there is of term ${ev.conflict_term}, held from index ${ev.conflict_index}; ${n} goes back to entry ${ev.next_index}`,
            reason: reason || "accelerated log backup (end of §5.3): skip the follower's whole conflicting term, not one entry per round trip",
          };
        }
        return { text: `${n}: ${ev.peer} rejected AppendEntries; ${n} goes back to entry ${ev.next_index}`, reason };
      case "lease_lost":
        return { text: `${n} heard from only ${ev.contacted} of the ${ev.quorum} servers it needs within its lease`, reason };
      case "transfer":
        if (ev.phase === "started") {
          return { text: `${n} starts a leadership transfer to ${ev.target}: it brings ${ev.target} up to date, then sends it TimeoutNow`, reason };
        }
        return { text: ev.error ? `${n}'s leadership transfer failed: ${ev.error}` : `${n}'s leadership transfer is finished`, reason };
      case "crash":
        return { text: `${n} crashes (it was ${ev.state} in term ${ev.term}); its volatile state is gone, its disk stays`, reason };
      case "restart":
        return { text: `${n} restarts from its stores (incarnation ${ev.incarnation})`, reason };
      case "partition":
        if (ev.cut) return { text: `link ${ev.cut[0]} → ${ev.cut[1]} is cut (one way)`, reason };
        if (ev.restored) return { text: `link ${ev.restored[0]} → ${ev.restored[1]} works again`, reason };
        if (ev.disconnected) return { text: `${ev.disconnected} is cut off from every other server`, reason };
        if (ev.connected) return { text: `${ev.connected}'s links work again`, reason };
        return { text: `network: ${(ev.groups || []).map((g) => "{" + g.join(" ") + "}").join(" | ")}`, reason };
      case "network":
        return {
          text: `network dials: loss ${(ev.loss * 100).toFixed(0)}%, delay ${(ev.delay * 1000).toFixed(0)} ms ± ${(ev.jitter * 1000).toFixed(0)}, ` +
            `duplicates ${(ev.duplicate * 100).toFixed(0)}%, reordering ${(ev.reorder * 100).toFixed(0)}%`,
          reason,
        };
      case "client_request":
        if (ADMIN.test(ev.command)) return { text: `an operator asks ${ev.to}: ${ev.command.replace(/_/g, " ")}`, reason };
        return { text: `a client sends "${ev.command}" to ${ev.to}`, reason };
      case "client_reply":
        return { text: `the client gets an answer for "${ev.command}": ${ev.ok ? "ok" : ev.error}`, reason };
      case "snapshot_taken":
        return { text: `${n} takes a snapshot up to entry ${ev.index} (term ${ev.term})`, reason };
      case "compact":
        return { text: `${n} removes log entries ${ev.first}–${ev.last}, now covered by its snapshot`, reason };
      case "snapshot_send":
        return {
          text: `${n} sends its snapshot (everything up to entry ${ev.index}, term ${ev.term}; ${ev.size} bytes) to ${ev.peer}`,
          reason: reason || `the entries ${ev.peer} needs next are no longer in ${n}'s log`,
        };
      case "snapshot_installed":
        return {
          text: `${n} installs ${ev.leader}'s snapshot: its state machine becomes the snapshot's, and its log now continues after entry ${ev.index} (term ${ev.term})`,
          reason: reason || "the leader had compacted the entries this follower lacked (§7, Figure 13: InstallSnapshot); " +
            "log entries that agree with the snapshot's last entry are kept, any others are discarded",
        };
      case "snapshot_restored":
        return { text: `${n} restores its state machine from its snapshot up to entry ${ev.index} (term ${ev.term})`, reason };
      case "snapshot_ignored":
        return {
          text: `${n} acknowledges ${ev.leader}'s snapshot up to entry ${ev.index} but keeps its own state: it has committed up to ${ev.commit_index} already`,
          reason: reason || "a late or duplicated InstallSnapshot: a snapshot of a prefix of the log must not roll it back (§7)",
        };
      case "restore":
        return { text: `${n}'s state machine is replaced by the snapshot up to entry ${ev.index} (term ${ev.term})`, reason };
      case "fsm_failed":
        return {
          text: `${n}'s state machine raised an exception at entry ${ev.index}: ${n} stops`,
          reason: reason || `${ev.error}. Like a panic in a Go FSM, this stops the server: a state machine in an unknown state must not apply more entries`,
        };
      case "timeout_now_refused":
        return { text: `${n} refuses a TimeoutNow from ${ev.leader} of term ${ev.term}`, reason };
      default: {
        const fields = Object.entries(ev)
          .filter(([k]) => !["t", "node", "kind", "func", "seq", "reason"].includes(k))
          .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`)
          .join(" ");
        return { text: `${n} ${kind} ${fields}`, reason };
      }
    }
  }

  function interventionText(i) {
    const a = i.args || {};
    switch (i.action) {
      case "submit": return `client "${a.command}" → ${a.node}`;
      case "crash": return `crash ${a.node}`;
      case "restart": return `restart ${a.node}`;
      case "force_timeout": return `force a timeout on ${a.node}`;
      case "partition": return `partition ${(a.groups || []).map((g) => "{" + g.join(" ") + "}").join(" | ")}`;
      case "heal": return "heal the network";
      case "cut": return `cut ${a.src} → ${a.dst}`;
      case "restore_link": return `restore ${a.src} → ${a.dst}`;
      case "disconnect": return `disconnect ${a.node}`;
      case "connect": return `connect ${a.node}`;
      case "set_faults": return "network: " + Object.entries(a).map(([k, v]) => `${k}=${v}`).join(" ");
      case "drop_message": return `drop message #${a.flight}`;
      case "duplicate_message": return `duplicate message #${a.flight}`;
      case "add_node": return `start a new, empty server ${a.node}`;
      case "add_voter": return `ask the leader to add ${a.node} as a voter`;
      case "remove_server": return `ask the leader to remove ${a.node}`;
      case "transfer_leadership": return a.target ? `ask the leader to hand over to ${a.target}` : "ask the leader to hand over";
      case "barrier": return "ask the leader for a barrier";
      case "verify_leader": return "ask the leader to verify it still leads";
      default: return `${i.action} ${JSON.stringify(a)}`;
    }
  }

  return { describe, rpcName, RPC_SHORT, interventionText, phaseName };
})();
