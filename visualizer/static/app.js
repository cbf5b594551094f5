// The page: keeps the state the server sends, draws it, and sends commands back.
//
// The browser decides nothing about the protocol. It receives a `snapshot`
// (everything) on connect and after a rewind, then `batch`es of changes, and
// sends `command`s (see visualizer/commands.py). Virtual time between two
// batches is interpolated from the speed, only to move messages smoothly.
"use strict";

(() => {
  const $ = (sel) => document.querySelector(sel);
  const FEED_LIMIT = 400;
  const HISTORY_LIMIT = 200;
  const PANEL_HZ = 10; // redraws per second of the log table and the feed (everything else: every frame) // interventions listed (the newest; all of them stay in the recording)
  // Kinds drawn in bold and kept in the feed whatever follows; the server's
  // snapshot says which (views.py FEED_KEEPS), this is only the first guess.
  let IMPORTANT = new Set(["state", "crash", "restart", "partition", "election", "commit", "vote", "truncate", "client_request",
    "configuration", "transfer", "snapshot_taken", "snapshot_send", "snapshot_installed", "compact"]);

  // ---------------------------------------------------------------- state

  const S = {
    ids: [],
    nodes: {},
    logs: {},
    flights: new Map(),
    links: [],
    faults: {},
    events: [],
    interventions: [],
    future: [],
    clients: new Map(),
    t: 0,
    tRecv: performance.now(),
    playing: false,
    speed: 0.25,
    end: 0,
    seed: null,
    config: {},
    narration: null,
    presets: [],
    membership: null, // the leader's latest and committed configurations (views.py StateTracker.membership)
    selected: new Set(),
    inspectedFlight: null,
    inspected: null, // {type: "flight"|"event"|"node", ...}
    showHeartbeats: true,
    feedShown: null, // seq of the newest event the feed shows; null: rebuild the feed
    logRows: null, // the log table's rows as last drawn, to touch only the rows that changed
    connected: false,
    stepFrom: null, // after a step (→): seq of the newest event before it; the first visible one after is announced
    panelsDrawnAt: 0, // performance.now() of the last redraw of the log table and the feed
    dirty: { logs: true, feed: true, history: true, panels: true, inspector: true },
    scrubbing: false,
    // id → suffrage ("voter", "nonvoter", "staging") in the latest configuration; null if none is known.
    members() {
      const latest = this.membership && this.membership.latest;
      return latest ? new Map(latest.servers.map((s) => [s.id, s.suffrage])) : null;
    },
    leaderId() {
      let best = null;
      for (const id of this.ids) {
        const v = this.nodes[id];
        if (v && v.up && v.state === "leader" && (!best || v.term > this.nodes[best].term)) best = id;
      }
      return best;
    },
  };

  // The virtual time to draw: the last one the server sent, moved on by the speed while playing.
  function vt() {
    if (!S.playing) return S.t;
    const ahead = ((performance.now() - S.tRecv) / 1000) * S.speed;
    return S.t + Math.min(ahead, 0.25 * S.speed);
  }

  // ---------------------------------------------------------------- socket

  const socket = io({ transports: ["websocket", "polling"] });
  window.raftSocket = socket; // for the end-to-end test and the curious

  function send(action, args) {
    socket.emit("command", Object.assign({ action }, args || {}));
  }

  socket.on("connect", () => setConn(true));
  socket.on("disconnect", () => setConn(false));
  socket.on("snapshot", applySnapshot);
  socket.on("batch", applyBatch);
  socket.on("error", (e) => toast(`${e.action ? e.action + ": " : ""}${e.message}`, true));
  socket.on("notice", (e) => toast(e.message, false));
  socket.on("status", (e) => { const b = $("#busy"); b.textContent = e.busy || ""; b.hidden = !e.busy; });
  socket.on("export", downloadRun);
  socket.on("explanation", showExplanation);

  function setConn(ok) {
    const c = $("#conn");
    c.textContent = ok ? "connected" : "disconnected";
    c.className = "pill " + (ok ? "good" : "bad");
    S.connected = ok;
    S.dirty.panels = true; // the play state says the run stopped with its server
  }

  function applySnapshot(snap) {
    S.ids = snap.ids;
    S.nodes = snap.nodes;
    S.logs = {};
    for (const [id, d] of Object.entries(snap.logs)) S.logs[id] = { first: d.first, entries: d.entries };
    S.flights = new Map(snap.flights.map((f) => [f.flight, f]));
    S.links = snap.links;
    S.faults = snap.faults;
    S.events = snap.events;
    if (snap.important) IMPORTANT = new Set(snap.important);
    S.feedShown = null; // the feed is rebuilt from scratch
    S.logRows = null;
    S.interventions = snap.interventions;
    S.future = snap.future || [];
    S.clients = new Map(snap.clients.map((c) => [c.seq, c]));
    S.seed = snap.seed;
    S.config = snap.config;
    S.narration = snap.narration;
    S.readingTime = snap.reading_time || 0;
    S.presets = snap.presets;
    S.membership = snap.membership;
    S.selected = new Set([...S.selected].filter((id) => S.ids.includes(id)));
    S.inspectedFlight = null;
    setClock(snap);
    ring.layout(S.ids);
    buildStaticControls();
    markAllDirty();
    document.body.dataset.ready = "1";
  }

  function applyBatch(b) {
    if (b.ids) {
      // A server joined while the run went on: redraw the ring with it, no reset needed.
      S.ids = b.ids;
      ring.layout(S.ids);
      buildStaticControls();
      markAllDirty();
    }
    if ("membership" in b) { S.membership = b.membership; S.dirty.panels = true; S.dirty.logs = true; }
    if (b.events) {
      for (const ev of b.events) {
        if (ev.kind === "rpc_drop") {
          const f = [...S.flights.values()].find((x) => x.id === ev.id && x.src === ev.from && x.dst === ev.to && x.dir === ev.dir);
          ring.markDrop(f ? f.flight : null, ev);
        }
      }
      S.events.push(...b.events);
      if (S.stepFrom !== null) {
        const first = b.events.find((ev) => ev.seq > S.stepFrom && feedVisible(ev));
        if (first) {
          toast(`Step → t=${first.t.toFixed(3)} s: ${Words.describe(first).text}`, false);
          S.stepFrom = null;
        }
      }
      if (S.events.length > 4 * FEED_LIMIT) S.events = trimEvents(S.events);
      S.dirty.feed = true;
    }
    if (b.nodes) {
      for (const [id, changed] of Object.entries(b.nodes)) S.nodes[id] = Object.assign(S.nodes[id] || {}, changed);
      S.dirty.logs = true;
      S.dirty.inspector = true;
    }
    if (b.logs) {
      for (const [id, d] of Object.entries(b.logs)) {
        const old = S.logs[id] || { first: d.first, entries: [] };
        const kept = old.first === d.first ? old.entries.slice(0, d.keep) : [];
        S.logs[id] = { first: d.first, entries: kept.concat(d.entries) };
      }
      S.dirty.logs = true;
    }
    if (b.flights) {
      for (const fid of b.flights.remove) S.flights.delete(fid);
      for (const f of b.flights.add) S.flights.set(f.flight, f);
      if (S.inspected && S.inspected.type === "flight") S.dirty.inspector = true;
    }
    if (b.links) { S.links = b.links; }
    if (b.faults) { S.faults = b.faults; S.dirty.panels = true; }
    if (b.interventions) { S.interventions.push(...b.interventions); S.dirty.history = true; }
    if (b.clients) {
      for (const c of b.clients) S.clients.set(c.seq, c);
      // Only the newest 30 are listed; keep a few more for late answers, not an hour's worth.
      for (const seq of S.clients.keys()) { if (S.clients.size <= 300) break; S.clients.delete(seq); }
      S.dirty.history = true;
    }
    if ("narration" in b) { S.narration = b.narration; S.dirty.panels = true; }
    if ("future_count" in b && b.future_count !== S.future.length) {
      if (b.future_count === 0) S.future = [];
      else S.future = S.future.slice(S.future.length - b.future_count);
      S.dirty.history = true;
    }
    setClock(b);
  }

  function setClock(m) {
    if (m.t !== undefined) { S.t = m.t; S.tRecv = performance.now(); }
    if (m.playing !== undefined) S.playing = m.playing;
    if (m.speed !== undefined) S.speed = m.speed;
    if (m.end !== undefined) S.end = m.end;
    if (m.reading_time !== undefined) S.readingTime = m.reading_time;
    S.dirty.panels = true;
  }

  // After something the user did: redraw everything, in the very next frame.
  function markAllDirty() {
    for (const k of Object.keys(S.dirty)) S.dirty[k] = true;
    S.panelsDrawnAt = 0;
  }

  // ---------------------------------------------------------------- ring

  const ring = new Ring.View($("#ring"), {
    selectNode(id, add) {
      if (add) { if (S.selected.has(id)) S.selected.delete(id); else S.selected.add(id); }
      else S.selected = S.selected.has(id) && S.selected.size === 1 ? new Set() : new Set([id]);
      S.inspected = S.selected.size === 1 ? { type: "node", id: [...S.selected][0] } : S.inspected;
      markAllDirty();
      // Say what is selected at once, not at the next frame: a key pressed
      // right after the click (C, T...) acts on what the label shows.
      $("#selected-label").textContent = [...S.selected].join(", ") || "none (client requests go to the leader)";
    },
    inspectFlight(fid) {
      S.inspectedFlight = fid;
      S.inspected = { type: "flight", flight: fid, copy: S.flights.get(fid) };
      S.dirty.inspector = true;
      S.panelsDrawnAt = 0;
    },
    toggleLink(src, dst) {
      const isCut = S.links.some(([a, b]) => a === src && b === dst);
      send(isCut ? "restore" : "cut", { src, dst });
    },
  });

  // ---------------------------------------------------------------- drawing

  function frame() {
    const now = vt();
    ring.drawNodes(S, now);
    ring.drawLinks(S.links);
    ring.drawMessages(S, now);
    ring.fadeDrops();
    $("#clock").textContent = `t = ${now.toFixed(3)} s`;
    if (S.dirty.panels) { drawPanels(); S.dirty.panels = false; }
    if (S.dirty.history) { drawHistory(); S.dirty.history = false; }
    if (S.dirty.inspector) { drawInspector(); S.dirty.inspector = false; }
    // The ring and the small panels follow every frame; the two big ones,
    // the log table and the feed, at most PANEL_HZ times a second: faster
    // than anyone reads, and it leaves the frame budget to the animation
    // when clients write and batches arrive 25 times a second.
    const wall = performance.now();
    if (wall - S.panelsDrawnAt >= 1000 / PANEL_HZ) {
      S.panelsDrawnAt = wall;
      if (S.dirty.logs) { drawLogs(); S.dirty.logs = false; }
      if (S.dirty.feed) { drawFeed(); S.dirty.feed = false; }
    }
    requestAnimationFrame(frame);
  }

  function esc(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function drawPanels() {
    $("#seed").textContent = S.seed ?? "?";
    $("#size").textContent = S.ids.length;
    $("#prevote").textContent = S.config.pre_vote === false ? "off" : "on";
    const ps = $("#play-state");
    ps.textContent = !S.connected ? "stopped: no server" : S.playing ? `playing ${fmtSpeed(S.speed)}` : "paused";
    ps.className = "pill " + (!S.connected ? "bad" : S.playing ? "good" : "");
    $("#play-btn").textContent = S.playing ? "❚❚ Pause" : "▶ Play";
    $("#speed-label").textContent = fmtSpeed(S.speed);
    const slider = $("#speed");
    if (document.activeElement !== slider) slider.value = Math.log10(S.speed).toFixed(2);
    const scrub = $("#scrub");
    scrub.max = Math.max(S.end, S.t, 0.001).toFixed(3);
    if (!S.scrubbing) { scrub.value = S.t.toFixed(3); $("#scrub-label").textContent = `${S.t.toFixed(3)} s`; }
    $("#end-label").textContent = S.future.length ? `recorded until ${S.end.toFixed(3)} s (${S.future.length} intervention${S.future.length === 1 ? "" : "s"} ahead)` : `end ${S.end.toFixed(3)} s`;
    drawMarks();
    $("#selected-label").textContent = S.selected.size ? [...S.selected].join(", ") : "none (client requests go to the leader)";
    for (const [name, scale, unit] of [["loss", 100, "%"], ["delay", 1000, " ms"], ["jitter", 1000, " ms"], ["duplicate", 100, "%"], ["reorder", 100, "%"]]) {
      const input = $(`#f-${name}`);
      if (S.faults[name] === undefined) continue;
      if (document.activeElement !== input) input.value = S.faults[name];
      input.nextElementSibling.textContent = `${(S.faults[name] * scale).toFixed(0)}${unit}`;
    }
    drawNarration();
    drawMembership();
  }

  function configText(c) {
    if (!c) return "—";
    return `entry ${c.index}: ` + c.servers.map((s) => s.id + (s.suffrage !== "voter" ? ` (${s.suffrage})` : "")).join(" ");
  }

  // The cluster's configurations: the latest is in force at once, the committed one is safe (thesis §4.1).
  function drawMembership() {
    const m = S.membership;
    const box = $("#membership");
    let html;
    if (!m) html = `<span class="muted">no running server knows a configuration yet</span>`;
    else {
      const pending = m.committed && m.latest && m.latest.index !== m.committed.index;
      html = table([["latest", `<span class="conf">${esc(configText(m.latest))}</span>`],
        ["committed", `<span class="conf">${esc(configText(m.committed))}</span>`]]) +
        (pending ? `<p class="pending">entry ${m.latest.index} is in force but not committed yet: the leader accepts no other change until it is</p>` : "") +
        `<p class="muted small">as ${esc(m.source)} sees them${m.source === S.leaderId() ? " (the leader)" : " (no leader now: the newest any running server knows)"}</p>`;
    }
    if (box.dataset.html !== html) { box.innerHTML = html; box.dataset.html = html; }
    const input = $("#new-node");
    let k = 1;
    while (S.ids.includes(`n${k}`)) k++;
    input.placeholder = `n${k}`;
  }

  function fmtSpeed(s) {
    return s >= 0.1 ? `${s.toFixed(2)}×` : `${s.toFixed(3)}×`;
  }

  function drawMarks() {
    const marks = $("#marks");
    const end = Math.max(S.end, S.t, 0.001);
    const parts = [];
    for (const i of S.interventions) parts.push(`<i style="left:${(100 * i.t / end).toFixed(2)}%" title="${esc(i.t.toFixed(3) + " s: " + Words.interventionText(i))}"></i>`);
    for (const i of S.future) parts.push(`<i class="future" style="left:${(100 * i.t / end).toFixed(2)}%" title="${esc("ahead, " + i.t.toFixed(3) + " s: " + Words.interventionText(i))}"></i>`);
    const html = parts.join("");
    if (marks.dataset.html !== html) { marks.innerHTML = html; marks.dataset.html = html; }
  }

  function drawNarration() {
    const box = $("#narration");
    const n = S.narration;
    box.hidden = !n;
    if (!n) return;
    $("#narration-title").textContent = n.title;
    const stepNo = Math.min(n.index + 1, n.count);
    $("#narration-progress").textContent = n.phase === "done" ? `(finished: ${n.count} steps)` :
      n.stalled ? `(step ${stepNo} of ${n.count}: still waiting for ${n.awaiting}. It may no longer happen ` +
        `after what you changed: Restart the scenario, or Skip this step.)` :
      `(step ${stepNo} of ${n.count}${n.phase === "waiting" ? ", waiting for the next event…" : n.phase === "paused" ? ", press Next" : ""})`;
    $("#narration-skip").hidden = !n.stalled;
    const pace = $("#narration-pace");
    if (document.activeElement !== pace) pace.value = String(S.readingTime || 0);
    const shown = n.shown || [];
    const last = shown[shown.length - 1];
    const older = shown.slice(-3, -1).map((s) => `<div class="older">t=${s.t.toFixed(3)} s · ${esc(s.text)}</div>`).join("");
    const html = older + (last ? `<div>t=${last.t.toFixed(3)} s · ${esc(last.text)}</div>` : "");
    const cap = $("#narration-caption");
    if (cap.dataset.html !== html) { cap.innerHTML = html; cap.dataset.html = html; }
    $("#narration-next").disabled = n.phase === "done";
  }

  // The log table: one row per node, one column per index. Entries a node
  // has compacted into its snapshot are drawn as grey "snapshot" cells:
  // they are not lost, the snapshot holds their effect.
  function drawLogs() {
    const ids = S.ids;
    let lo = Infinity, hi = 0;
    for (const id of ids) {
      const log = S.logs[id];
      const snap = (S.nodes[id] || {}).snapshot;
      if (snap) { lo = 1; hi = Math.max(hi, snap.index); }
      if (!log || !log.entries.length) continue;
      lo = Math.min(lo, log.entries[0][0]);
      hi = Math.max(hi, log.entries[log.entries.length - 1][0]);
    }
    const leader = S.leaderId();
    const lv = leader ? S.nodes[leader] : null;
    if (lv && lv.next_index) for (const n of Object.values(lv.next_index)) hi = Math.max(hi, n);
    if (!isFinite(lo)) lo = 1;
    const maxCols = 36;
    const from = Math.max(lo, hi - maxCols + 1);
    let html = `<th>node</th>`;
    if (from > lo) html += `<th class="index">…</th>`;
    for (let i = from; i <= hi; i++) html += `<th class="index">${i}</th>`;
    html += `<th>state machine</th>`;
    const rows = [{ cls: "", html }];
    for (const id of ids) {
      const v = S.nodes[id] || {};
      const log = S.logs[id] || { first: 0, entries: [] };
      const byIndex = new Map(log.entries.map((e) => [e[0], e]));
      const changes = configChanges(log.entries);
      const snap = v.snapshot;
      const firstKept = log.entries.length ? log.entries[0][0] : Infinity;
      const lastCompacted = snap ? Math.min(snap.index, firstKept - 1) : 0; // where the snapshot's label goes
      const commit = v.up ? v.commit : null;
      const next = lv && lv.next_index ? lv.next_index[id] : undefined;
      const match = lv && lv.match_index ? lv.match_index[id] : undefined;
      const role = v.up ? v.state : "crashed";
      const head = `<div class="nodehead"><span>${esc(id)} ${id === leader ? "★" : ""}</span><small>${esc(role)} · t${v.term}` +
        ` · c${commit ?? "—"} a${v.up ? v.applied : "—"}</small>` +
        (snap ? `<small>snapshot ≤ ${snap.index} (t${snap.term})</small>` : "") +
        (id !== leader && next !== undefined ? `<small>next ${next} · match ${match ?? "?"}</small>` : "") + `</div>`;
      html = `<th>${head}</th>`;
      if (from > lo) html += snap && snap.index >= from - 1 ? `<td class="compacted" title="earlier entries: in ${esc(id)}'s snapshot">…</td>` : `<td></td>`;
      for (let i = from; i <= hi; i++) {
        const e = byIndex.get(i);
        const marks = (next === i ? " next" : "") + (match === i && id !== leader ? " match" : "");
        if (!e && snap && i <= snap.index) {
          const tip = `entry ${i} was compacted into ${id}'s snapshot (it covers entries up to ${snap.index}, term ${snap.term})`;
          html += `<td class="compacted${marks}" title="${esc(tip)}">${i === lastCompacted ? `snap<br>≤${snap.index}` : ""}</td>`;
          continue;
        }
        if (!e) { html += `<td class="empty${marks}">${next === i ? "next" : ""}</td>`; continue; }
        const [index, term, type, text] = e;
        const colour = Ring.termColour(term);
        const state = commit === null ? "unknown" : index <= commit ? "committed" : "uncommitted";
        const cls = `entry ${state}${type === "LogNoop" ? " noop" : ""}${type === "LogConfiguration" ? " config" : ""}${marks}`;
        const label = type === "LogConfiguration" ? changes.get(index) : shortCommand(text);
        html += `<td class="${cls}" style="background-color:${colour};color:${Ring.inkFor(colour)}" title="${esc(`index ${index}, term ${term}, ${type}: ${text} (${state} on ${id})`)}">` +
          `<span class="term">${term}</span>${esc(label)}</td>`;
      }
      const kv = v.up && v.kv ? Object.entries(v.kv).map(([k, val]) => `${k}=${val}`).join(" ") || "{}" : "—";
      html += `<td class="kv" title="the key-value state machine; volatile: rebuilt from the log after a restart">${esc(kv)}</td>`;
      rows.push({ cls: v.up ? "" : "crashed", html });
    }
    // Touch only the rows that changed: a heartbeat changes none of them.
    const box = $("#logs");
    let table = box.querySelector("table.logs");
    if (!table || !S.logRows || S.logRows.length !== rows.length) {
      box.innerHTML = `<table class="logs">${rows.map((r) => `<tr class="${r.cls}">${r.html}</tr>`).join("")}</table>`;
      S.logRows = rows;
      return;
    }
    const trs = table.rows;
    rows.forEach((r, i) => {
      const old = S.logRows[i];
      if (old.cls !== r.cls) trs[i].className = r.cls;
      if (old.html !== r.html) trs[i].innerHTML = r.html;
    });
    S.logRows = rows;
  }

  // A short label for each configuration entry of a log: what it changed
  // from the one before it ("+n4", "−n1"), or "config" for the first one.
  function configChanges(entries) {
    const labels = new Map();
    let before = null;
    for (const [index, , type, text] of entries) {
      if (type !== "LogConfiguration") continue;
      const servers = text.split(" ").slice(1).map((s) => s.replace(/\(.*\)$/, ""));
      if (!before) labels.set(index, "config");
      else {
        const added = servers.filter((s) => !before.includes(s));
        const removed = before.filter((s) => !servers.includes(s));
        labels.set(index, added.map((s) => "+" + s).concat(removed.map((s) => "−" + s)).join(" ") || "config");
      }
      before = servers;
    }
    return labels;
  }

  function shortCommand(text) {
    const m = /^set (\S+) (.*)$/.exec(text);
    if (m) return `${m[1]}=${m[2]}`.slice(0, 8);
    return text.slice(0, 8);
  }

  function feedVisible(ev) {
    const isMsg = ev.kind === "rpc_send" || ev.kind === "rpc_deliver" || ev.kind === "rpc_drop";
    if (isMsg && !$("#flt-msg").checked) return false;
    if (isMsg && !$("#flt-hb").checked && isHeartbeatEvent(ev)) return false;
    if (ev.kind === "timer" && !$("#flt-timer").checked) return false;
    if (ev.kind === "request_vote" || ev.kind === "request_pre_vote") return false; // the vote event says the same
    return true;
  }

  const heartbeatIds = new Set();
  function isHeartbeatEvent(ev) {
    if (ev.kind === "rpc_send" && ev.dir === "request" && ev.rpc === "append_entries") {
      const empty = ev.msg && ev.msg.entries && ev.msg.entries.length === 0;
      if (empty) heartbeatIds.add(ev.id);
      return empty;
    }
    return ev.rpc === "append_entries" && heartbeatIds.has(ev.id);
  }

  // The feed, newest first. New events are added at the top and the oldest
  // fall off the bottom; the list is rebuilt only after a snapshot or when a
  // filter changes. (Rebuilding it for every batch, 25 times a second, was
  // most of the page's work once clients wrote.)
  function feedItem(ev, showFunc) {
    const { text, reason } = Words.describe(ev);
    const sel = S.inspected && S.inspected.type === "event" && S.inspected.ev.seq === ev.seq ? " selected" : "";
    return `<li data-seq="${ev.seq}" class="${sel}"><span class="t">${ev.t.toFixed(3)}</span><span>` +
      `<span class="${IMPORTANT.has(ev.kind) ? "k-important" : ""}">${esc(text)}</span>` +
      (reason ? ` <span class="why">— because ${esc(reason)}</span>` : "") +
      (showFunc && ev.func ? ` <span class="func">${esc(ev.func)}()</span>` : "") + `</span></li>`;
  }

  function drawFeed() {
    const feed = $("#feed");
    const showFunc = $("#flt-func").checked;
    const newest = S.events.length ? S.events[S.events.length - 1].seq : -1;
    const items = [];
    for (let i = S.events.length - 1; i >= 0 && items.length < FEED_LIMIT; i--) {
      const ev = S.events[i];
      if (S.feedShown !== null && ev.seq <= S.feedShown) break; // already on the page
      if (feedVisible(ev)) items.push(feedItem(ev, showFunc));
    }
    if (S.feedShown === null) feed.innerHTML = items.join("");
    else if (items.length) feed.insertAdjacentHTML("afterbegin", items.join(""));
    S.feedShown = newest;
    while (feed.childElementCount > FEED_LIMIT) feed.lastElementChild.remove();
  }

  // Keep the event store bounded without losing what the feed is for: the
  // newest events of every kind, and the newest important ones (elections,
  // commits, crashes...) however many heartbeats came after them.
  function trimEvents(events) {
    const cut = events.length - 2 * FEED_LIMIT;
    const kept = [];
    for (let i = 0; i < cut; i++) if (IMPORTANT.has(events[i].kind)) kept.push(events[i]);
    return kept.slice(-FEED_LIMIT).concat(events.slice(cut));
  }

  // Set a box's HTML only when it changed (string compares are cheap; layout is not).
  function setHTML(box, html) {
    if (box.dataset.html !== html) { box.innerHTML = html; box.dataset.html = html; }
  }

  function drawHistory() {
    const rows = S.interventions.slice(-HISTORY_LIMIT).map((i) => `<li class="clickable" data-t="${i.t}"><span class="t">${i.t.toFixed(3)} s</span> ${esc(Words.interventionText(i))}</li>`);
    rows.push(...S.future.slice(0, HISTORY_LIMIT).map((i) => `<li class="future clickable" data-t="${i.t}" title="recorded after this moment: replays if you play on; a new intervention drops it"><span class="t">${i.t.toFixed(3)} s</span> ${esc(Words.interventionText(i))} (ahead)</li>`));
    setHTML($("#interventions"), rows.join("") || `<li class="muted">none yet: this run is the seed alone</li>`);
    const clients = [...S.clients.values()].sort((a, b) => a.seq - b.seq).slice(-30);
    setHTML($("#clients"), clients.map((c) => {
      const answer = c.ok === null ? "waiting…" : c.ok ? `ok${c.index ? `, index ${c.index}` : ""}${c.value !== null && c.value !== undefined ? `, value "${c.value}"` : c.command.startsWith("get ") ? ", no value" : ""}` : `refused: ${c.error}`;
      return `<li><span class="t">${c.t.toFixed(3)} s</span> "${esc(c.command)}" → ${esc(c.node)}: ${esc(answer)}` +
        (c.answered_at !== null ? ` <span class="t">(${c.answered_at.toFixed(3)} s)</span>` : "") + `</li>`;
    }).join("") || `<li class="muted">none yet</li>`);
  }

  function table(rows) {
    return `<table>${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${v}</td></tr>`).join("")}</table>`;
  }

  function drawInspector() {
    const body = $("#inspector-body");
    const it = S.inspected;
    if (!it) { body.innerHTML = "Nothing selected."; body.className = "muted"; return; }
    body.className = "";
    if (it.type === "flight") {
      const f = S.flights.get(it.flight) || it.copy;
      const alive = S.flights.has(it.flight);
      const rows = [["message", `#${f.flight} (RPC id ${f.id})`], ["what", esc(`${Words.rpcName(f.kind)} ${f.dir}`)],
        ["from → to", esc(`${f.src} → ${f.dst}`)], ["sent at", `${f.sent_at.toFixed(4)} s`], ["arrives at", `${f.arrives_at.toFixed(4)} s`]];
      for (const [k, v] of Object.entries(f.msg || {})) rows.push([k, esc(typeof v === "object" ? JSON.stringify(v) : v)]);
      body.innerHTML = table(rows) + (alive
        ? `<div class="row"><button id="drop-btn" title="D">Drop it</button><button id="dup-btn" title="U">Duplicate it</button></div>`
        : `<p class="muted">This message has arrived or was lost.</p>`);
      if (alive) {
        $("#drop-btn").onclick = () => send("drop", { flight: f.flight });
        $("#dup-btn").onclick = () => send("duplicate", { flight: f.flight });
      }
    } else if (it.type === "event") {
      const ev = it.ev;
      const { text, reason } = Words.describe(ev);
      const rows = [["time", `${ev.t.toFixed(6)} s`], ["node", esc(ev.node)], ["kind", esc(ev.kind)], ["in words", esc(text)]];
      if (reason) rows.push(["why", esc(reason)]);
      for (const [k, v] of Object.entries(ev)) {
        if (!["t", "node", "kind", "func", "seq", "reason"].includes(k)) rows.push([k, esc(typeof v === "object" ? JSON.stringify(v) : v)]);
      }
      rows.push(["emitted by", `<code>${esc(ev.func)}</code>`]);
      const x = it.explanation;
      if (x && !x.missing) {
        rows.push(["Python", `<code>${esc(x.python)}</code> <code>${esc(x.qualname)}</code>`]);
        if (x.mirrors) rows.push(["Go (hashicorp/raft)", esc(x.mirrors)]);
        if (x.paper) rows.push(["Paper", esc(x.paper)]);
        if (x.differs) rows.push(["Differs from Go", esc(x.differs)]);
        if (x.summary) rows.push(["does", esc(x.summary)]);
      } else if (x && x.missing) {
        rows.push(["code", "not a function of the raft package (the visualizer or a test emitted it)"]);
      } else rows.push(["code", "looking it up…"]);
      body.innerHTML = table(rows) + (x && x.source ? `<details><summary>source</summary><pre>${esc(x.source)}</pre></details>` : "") +
        `<div class="row"><button id="jump-btn">Rewind to this moment</button></div>`;
      $("#jump-btn").onclick = () => send("seek", { t: ev.t });
    } else if (it.type === "node") {
      const v = S.nodes[it.id] || {};
      const hb = v.heartbeat_timeout;
      const silence = v.up && v.last_contact !== null && v.last_contact !== undefined ? `${(vt() - v.last_contact).toFixed(3)} s ago` : v.up ? "never" : "—";
      const rows = [["node", esc(it.id)], ["running", v.up ? "yes" : "no: crashed (volatile state lost)"],
        ["role", esc(v.up ? v.state : "crashed")],
        ["current term (disk)", v.term], ["voted for (disk)", esc(v.voted_for ? `${v.voted_for} in term ${v.voted_term}` : "nobody")],
        ["log (disk)", (S.logs[it.id] || { entries: [] }).entries.length + " entries"],
        ["commit index", v.up ? v.commit : "— (volatile)"], ["last applied", v.up ? v.applied : "— (volatile)"],
        ["knows leader", v.up ? esc(v.leader || "nobody") : "—"], ["heard from a leader", esc(silence)]];
      if (v.up && v.timer) {
        const window = `${v.timer.deadline.toFixed(3)}–${(v.timer.deadline + v.timer.timeout).toFixed(3)} s`;
        const when = v.timer.fires_at !== undefined && v.timer.fires_at !== null
          ? `fires at ${v.timer.fires_at.toFixed(3)} s (drawn at random in ${window})` : `fires at a random moment in ${window}`;
        rows.push([`${v.timer.timer} timer`, when +
          (hb && v.timer.timer === "heartbeat" ? `; it starts an election only if no leader was heard for ${hb} s` : "")]);
      }
      rows.push(["last snapshot (disk)", v.snapshot ? `covers entries up to ${v.snapshot.index} (term ${v.snapshot.term})` : "none"]);
      if (v.up && v.configuration) {
        rows.push(["configuration, latest", esc(configText(v.configuration.latest))]);
        rows.push(["configuration, committed", esc(configText(v.configuration.committed))]);
      }
      if (v.next_index) rows.push(["nextIndex", esc(JSON.stringify(v.next_index))]);
      if (v.match_index) rows.push(["matchIndex", esc(JSON.stringify(v.match_index))]);
      if (v.kv) rows.push(["state machine", esc(JSON.stringify(v.kv))]);
      body.innerHTML = table(rows);
    }
  }

  function showExplanation(x) {
    if (S.inspected && S.inspected.type === "event" && S.inspected.ev.func === x.func) {
      S.inspected.explanation = x;
      S.dirty.inspector = true;
    }
  }

  // ---------------------------------------------------------------- controls

  function selectedOrError() {
    if (!S.selected.size) { toast("select a node first (click it, or press 1–9)", true); return []; }
    return [...S.selected];
  }

  const actions = {
    playPause() { send(S.playing ? "pause" : "play"); },
    step() {
      // Step to the next event the feed shows, and say what it was (see applyBatch).
      const skip = [];
      if (!$("#flt-timer").checked) skip.push("timer");
      if (!$("#flt-hb").checked) skip.push("heartbeat");
      if (!$("#flt-msg").checked) skip.push("message");
      S.stepFrom = S.events.length ? S.events[S.events.length - 1].seq : -1;
      send("step", skip.length ? { skip } : {});
    },
    back() { send("seek", { t: Math.max(0, S.t - 1) }); },
    slower() { send("speed", { speed: Math.max(0.001, S.speed / 2) }); },
    faster() { send("speed", { speed: Math.min(2, S.speed * 2) }); },
    crash() { for (const id of selectedOrError()) send("crash", { node: id }); },
    restart() { for (const id of selectedOrError()) send("restart", { node: id }); },
    timeout() { for (const id of selectedOrError()) send("timeout", { node: id }); },
    write() {
      const args = { key: $("#kv-key").value.trim(), value: $("#kv-value").value };
      if (S.selected.size === 1) args.node = [...S.selected][0];
      send("write", args);
      const v = parseInt($("#kv-value").value, 10);
      if (!isNaN(v)) $("#kv-value").value = String(v + 1);
    },
    read() {
      const args = { key: $("#kv-key").value.trim() };
      if (S.selected.size === 1) args.node = [...S.selected][0];
      send("read", args);
    },
    isolate() { const sel = selectedOrError(); if (sel.length) send("partition", { groups: [sel] }); },
    addServer() {
      const name = $("#new-node").value.trim();
      send("add_server", name ? { node: name } : {});
      $("#new-node").value = "";
    },
    removeServer() { for (const id of selectedOrError()) send("remove_server", { node: id }); },
    transfer() { send("transfer", S.selected.size === 1 ? { node: [...S.selected][0] } : {}); },
    heal() { send("heal"); },
    drop() {
      if (S.inspected && S.inspected.type === "flight") send("drop", { flight: S.inspected.flight });
      else toast("Select a message in flight first (click it on the ring), then press D to drop it.", true);
    },
    duplicate() {
      if (S.inspected && S.inspected.type === "flight") send("duplicate", { flight: S.inspected.flight });
      else toast("Select a message in flight first (click it on the ring), then press U to duplicate it.", true);
    },
    next() { send("narration", { do: "next" }); },
    prev() { send("narration", { do: "back" }); },
    lecture() { document.body.classList.toggle("lecture"); },
    help() { const d = $("#help"); if (d.open) d.close(); else d.showModal(); },
  };

  function buildStaticControls() {
    const nodesSel = $("#reset-nodes");
    if (!nodesSel.options.length) for (let n = 3; n <= 9; n++) nodesSel.add(new Option(String(n), String(n)));
    nodesSel.value = String(S.ids.length);
    if (document.activeElement !== $("#reset-seed")) $("#reset-seed").value = S.seed;
    const presetSel = $("#preset-select");
    const names = S.presets.map((p) => p.name).join();
    if (presetSel.dataset.names !== names) {
      presetSel.replaceChildren(...S.presets.map((p) => new Option(p.title, p.name)));
      presetSel.dataset.names = names;
      showPresetSummary();
    }
    const groups = $("#groups");
    if (groups.dataset.ids !== S.ids.join()) {
      groups.innerHTML = S.ids.map((id) => `<label>${esc(id)}<select data-node="${esc(id)}"><option>A</option><option>B</option><option>C</option></select></label>`).join("");
      groups.dataset.ids = S.ids.join();
    }
  }

  function showPresetSummary() {
    const p = S.presets.find((x) => x.name === $("#preset-select").value);
    $("#preset-summary").textContent = p ? p.summary : "";
  }

  function wire() {
    $("#play-btn").onclick = actions.playPause;
    $("#step-btn").onclick = actions.step;
    $("#back-btn").onclick = actions.back;
    $("#speed").oninput = (e) => { $("#speed-label").textContent = fmtSpeed(Math.pow(10, +e.target.value)); };
    $("#speed").onchange = (e) => send("speed", { speed: Math.min(2, +Math.pow(10, +e.target.value).toFixed(4)) });
    const scrub = $("#scrub");
    scrub.oninput = () => { S.scrubbing = true; $("#scrub-label").textContent = `→ ${(+scrub.value).toFixed(3)} s`; };
    scrub.onchange = () => { S.scrubbing = false; send("seek", { t: +scrub.value }); };
    $("#export-btn").onclick = () => send("export");
    $("#import-file").onchange = importRun;
    $("#reset-btn").onclick = () => send("reset", { nodes: +$("#reset-nodes").value, seed: parseInt($("#reset-seed").value || "0", 10) });
    $("#crash-btn").onclick = actions.crash;
    $("#restart-btn").onclick = actions.restart;
    $("#timeout-btn").onclick = actions.timeout;
    $("#write-btn").onclick = actions.write;
    $("#read-btn").onclick = actions.read;
    $("#isolate-btn").onclick = actions.isolate;
    $("#add-server-btn").onclick = actions.addServer;
    $("#remove-server-btn").onclick = actions.removeServer;
    $("#transfer-btn").onclick = actions.transfer;
    $("#heal-btn").onclick = actions.heal;
    $("#groups-btn").onclick = () => {
      const byGroup = {};
      for (const sel of document.querySelectorAll("#groups select")) (byGroup[sel.value] = byGroup[sel.value] || []).push(sel.dataset.node);
      const groups = Object.keys(byGroup).sort().map((k) => byGroup[k]);
      if (groups.length < 2) send("heal"); else send("partition", { groups });
    };
    for (const name of ["loss", "delay", "jitter", "duplicate", "reorder"]) {
      const input = $(`#f-${name}`);
      input.onchange = () => {
        const args = { [name]: +input.value };
        // Jitter may not exceed delay; move them together so the dial never refuses.
        if (name === "delay" && S.faults.jitter > +input.value) args.jitter = +input.value;
        if (name === "jitter" && +input.value > S.faults.delay) args.delay = +input.value;
        send("faults", args);
      };
    }
    $("#preset-select").onchange = showPresetSummary;
    $("#preset-btn").onclick = () => send("preset", { name: $("#preset-select").value });
    $("#narration-next").onclick = actions.next;
    $("#narration-back").onclick = actions.prev;
    $("#narration-restart").onclick = () => send("narration", { do: "restart" });
    $("#narration-skip").onclick = () => send("narration", { do: "skip" });
    $("#narration-pace").onchange = (e) => send("narration", { do: "pace", seconds: Number(e.target.value) });
    $("#narration-exit").onclick = () => send("narration", { do: "exit" });
    $("#lecture-btn").onclick = actions.lecture;
    $("#help-btn").onclick = actions.help;
    for (const id of ["#flt-msg", "#flt-hb", "#flt-timer", "#flt-func"]) $(id).onchange = () => { S.feedShown = null; S.dirty.feed = true; };
    $("#show-hb").onchange = () => { S.showHeartbeats = $("#show-hb").checked; };
    $("#feed").onclick = (e) => {
      const li = e.target.closest("li[data-seq]");
      if (!li) return;
      const ev = S.events.find((x) => x.seq === +li.dataset.seq);
      if (!ev) return;
      S.inspected = { type: "event", ev, explanation: null };
      send("explain", { func: ev.func });
      S.dirty.inspector = true;
      S.panelsDrawnAt = 0;
      for (const old of $("#feed").querySelectorAll("li.selected")) old.classList.remove("selected");
      li.classList.add("selected");
    };
    $("#interventions").onclick = (e) => {
      const li = e.target.closest("li[data-t]");
      if (li) send("seek", { t: +li.dataset.t });
    };
    $("#ring").addEventListener("click", (e) => {
      if (e.target === $("#ring")) { S.selected = new Set(); markAllDirty(); }
    });
    document.addEventListener("keydown", onKey);
    // A clicked button keeps the focus, and space would press it again: give the keyboard back to the page.
    document.addEventListener("click", (e) => { const b = e.target.closest("button"); if (b) b.blur(); });
  }

  function onKey(e) {
    if (e.target.matches("input:not([type=range]):not([type=checkbox]), select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
    const keys = {
      " ": actions.playPause, ArrowRight: actions.step, ArrowLeft: actions.back, "[": actions.slower, "]": actions.faster,
      c: actions.crash, r: actions.restart, t: actions.timeout, w: actions.write, e: actions.read, p: actions.isolate,
      h: actions.heal, d: actions.drop, u: actions.duplicate, n: actions.next, b: actions.prev, l: actions.lecture, "?": actions.help,
      a: actions.addServer, x: actions.removeServer, g: actions.transfer,
      // Presenter remotes send PageDown/PageUp for next/previous and "." (blank screen): pause or play.
      PageDown: actions.next, PageUp: actions.prev, ".": actions.playPause,
      Escape: () => {
        const help = $("#help");
        if (help.open) { help.close(); return; }  // a modal dialog must close on Esc
        S.selected = new Set(); S.inspected = null; markAllDirty();
      },
    };
    const digit = /^Digit([1-9])$/.exec(e.code);
    if (digit) {
      const id = S.ids[+digit[1] - 1];
      if (id) ring.handlers.selectNode(id, e.shiftKey);
      e.preventDefault();
      return;
    }
    const act = keys[e.key];
    if (act) { e.preventDefault(); act(); }
  }

  function downloadRun(data) {
    const blob = new Blob([JSON.stringify(data, null, 1)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `raft-run-seed${data.params.seed}-t${(+data.now).toFixed(1)}.json`;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    toast(`exported ${data.interventions.length} interventions (seed ${data.params.seed})`, false);
  }

  function importRun(e) {
    const file = e.target.files[0];
    if (!file) return;
    file.text().then((text) => {
      let run;
      try { run = JSON.parse(text); } catch (err) { toast(`not a JSON file: ${err.message}`, true); return; }
      send("import", { run });
    });
    e.target.value = "";
  }

  function toast(message, bad) {
    const t = document.createElement("div");
    t.className = "toast" + (bad ? " error" : "");
    t.textContent = message;
    $("#toasts").appendChild(t);
    setTimeout(() => t.remove(), bad ? 6000 : 3500);
  }

  wire();
  requestAnimationFrame(frame);
})();
