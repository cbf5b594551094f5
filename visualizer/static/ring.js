// The ring: servers around a circle, the links between them, and messages in flight.
//
// Drawn in SVG. Nodes and links are rebuilt when the cluster changes size
// (a new cluster, or a server added while the run goes on); every animation
// frame then moves the messages and updates each node's look. A server
// outside the cluster's configuration (added but not yet a member, or
// removed) is drawn faded with a dashed outline. A message's position is (now - sent_at) / (arrives_at - sent_at)
// of the way from its sender to its receiver, in virtual time, so the
// picture is the simulation's own timing slowed down, never invented.
"use strict";

const Ring = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const CENTER = { x: 500, y: 405 };
  const NODE_R = 62;
  // Twelve term colours, none grey (grey means a crashed server) and no two
  // alike: Okabe–Ito's seven, then five of Paul Tol's, in an order where
  // neighbouring terms differ strongly. Term 13 takes term 1's colour again.
  const TERM_COLOURS = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
    "#332288", "#999933", "#882255", "#88DDCC", "#8C510A"];

  function termColour(term) {
    if (!term) return "#ffffff";
    return TERM_COLOURS[(term - 1) % TERM_COLOURS.length];
  }

  // Dark text on light fills, white text on dark ones.
  function inkFor(colour) {
    const hex = colour.replace("#", "");
    const [r, g, b] = [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
    const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    return lum > 0.45 ? "#111111" : "#ffffff";
  }

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function positions(ids) {
    const n = ids.length;
    const radius = n <= 5 ? 280 : n <= 7 ? 300 : 315;
    const out = {};
    ids.forEach((id, i) => {
      const a = -Math.PI / 2 + (2 * Math.PI * i) / n;
      out[id] = { x: CENTER.x + radius * Math.cos(a), y: CENTER.y + radius * Math.sin(a) };
    });
    return out;
  }

  function arcPath(cx, cy, r, fraction) {
    const f = Math.max(0, Math.min(0.9999, fraction));
    const start = -Math.PI / 2;
    const end = start + 2 * Math.PI * f;
    const x1 = cx + r * Math.cos(start), y1 = cy + r * Math.sin(start);
    const x2 = cx + r * Math.cos(end), y2 = cy + r * Math.sin(end);
    return `M ${x1} ${y1} A ${r} ${r} 0 ${f > 0.5 ? 1 : 0} 1 ${x2} ${y2}`;
  }

  class View {
    constructor(svg, handlers) {
      this.svg = svg;
      this.handlers = handlers; // {selectNode, inspectFlight, toggleLink, dragLink}
      this.linksLayer = svg.querySelector("#links");
      this.msgLayer = svg.querySelector("#messages");
      this.nodeLayer = svg.querySelector("#nodes");
      this.dropLayer = svg.querySelector("#drops");
      this.ids = [];
      this.pos = {};
      this.nodeEls = {};
      this.msgEls = new Map();
      this.cutEls = {};
      this.drops = [];
      this.drag = null;
    }

    // Build nodes and links for a cluster of these ids.
    layout(ids) {
      if (ids.join() === this.ids.join()) return;
      this.ids = ids.slice();
      this.pos = positions(ids);
      for (const layer of [this.linksLayer, this.msgLayer, this.nodeLayer, this.dropLayer]) layer.replaceChildren();
      this.nodeEls = {};
      this.msgEls = new Map();
      this.cutEls = {};
      for (let i = 0; i < ids.length; i++) {
        for (let j = i + 1; j < ids.length; j++) this.buildLink(ids[i], ids[j]);
      }
      for (const id of ids) this.buildNode(id);
    }

    buildLink(a, b) {
      const pa = this.pos[a], pb = this.pos[b];
      el("line", { x1: pa.x, y1: pa.y, x2: pb.x, y2: pb.y, class: "link" }, this.linksLayer);
      const mid = { x: (pa.x + pb.x) / 2, y: (pa.y + pb.y) / 2 };
      // Each half of the line stands for the direction leaving the node at its end.
      for (const [src, dst, p] of [[a, b, pa], [b, a, pb]]) {
        const half = el("line", { x1: p.x, y1: p.y, x2: mid.x, y2: mid.y, class: "link-half" }, this.linksLayer);
        const title = el("title", {}, half);
        title.textContent = `${src} → ${dst}: click to cut or restore this direction`;
        half.addEventListener("click", (e) => { e.stopPropagation(); this.handlers.toggleLink(src, dst); });
        const cut = el("line", { x1: p.x, y1: p.y, x2: mid.x, y2: mid.y, class: "link-cut", visibility: "hidden" }, this.linksLayer);
        const q = { x: p.x + (mid.x - p.x) * 0.62, y: p.y + (mid.y - p.y) * 0.62 };
        const mark = el("text", { x: q.x, y: q.y + 8, class: "cut-mark", visibility: "hidden" }, this.linksLayer);
        mark.textContent = "✕";
        this.cutEls[`${src}>${dst}`] = [cut, mark];
      }
    }

    buildNode(id) {
      const p = this.pos[id];
      const g = el("g", { class: "node", transform: `translate(${p.x} ${p.y})`, "data-node": id }, this.nodeLayer);
      el("circle", { r: NODE_R + 16, class: "timer-track" }, g);
      const arc = el("path", { class: "timer-arc", d: "" }, g);
      el("circle", { r: NODE_R + 27, class: "selection" }, g);
      const circle = el("circle", { r: NODE_R, class: "node-shape" }, g);
      const diamond = el("polygon", { points: `0,${-NODE_R - 8} ${NODE_R + 8},0 0,${NODE_R + 8} ${-NODE_R - 8},0`, class: "node-shape" }, g);
      const square = el("rect", { x: -NODE_R, y: -NODE_R, width: 2 * NODE_R, height: 2 * NODE_R, rx: 12, class: "node-shape" }, g);
      const crashX = el("path", { d: `M -40 -40 L 40 40 M 40 -40 L -40 40`, class: "crash-x" }, g);
      const name = el("text", { y: -8, class: "name" }, g);
      const role = el("text", { y: 16, class: "role" }, g);
      const term = el("text", { y: 38, class: "termlabel" }, g);
      const below = el("text", { y: NODE_R + 50, class: "below" }, g);
      const below2 = el("text", { y: NODE_R + 70, class: "below2" }, g);
      const votes = el("g", {}, g);
      const tally = el("text", { y: -NODE_R - 34, class: "tally" }, g);
      const title = el("title", {}, g);
      name.textContent = id;
      g.addEventListener("pointerdown", (e) => this.startDrag(e, id));
      this.nodeEls[id] = { g, arc, circle, diamond, square, name, role, term, crashX, below, below2, votes, tally, title };
    }

    // A drag from one node to another toggles that one-way link; a click selects.
    startDrag(event, id) {
      event.preventDefault();
      const pt = this.svgPoint(event);
      this.drag = { id, start: pt, moved: false, line: null, shift: event.shiftKey };
      const move = (e) => {
        const q = this.svgPoint(e);
        if (!this.drag.moved && Math.hypot(q.x - pt.x, q.y - pt.y) > 12) {
          this.drag.moved = true;
          const p = this.pos[id];
          this.drag.line = el("line", { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: "drag-line" }, this.dropLayer);
        }
        if (this.drag.line) { this.drag.line.setAttribute("x2", q.x); this.drag.line.setAttribute("y2", q.y); }
      };
      const up = (e) => {
        window.removeEventListener("pointermove", move);
        window.removeEventListener("pointerup", up);
        const drag = this.drag;
        this.drag = null;
        if (drag.line) drag.line.remove();
        if (!drag.moved) { this.handlers.selectNode(id, drag.shift); return; }
        const q = this.svgPoint(e);
        const target = this.ids.find((other) => other !== id && Math.hypot(this.pos[other].x - q.x, this.pos[other].y - q.y) < NODE_R + 20);
        if (target) this.handlers.toggleLink(id, target);
      };
      window.addEventListener("pointermove", move);
      window.addEventListener("pointerup", up);
    }

    svgPoint(event) {
      const pt = this.svg.createSVGPoint();
      pt.x = event.clientX; pt.y = event.clientY;
      return pt.matrixTransform(this.svg.getScreenCTM().inverse());
    }

    // Update every node's look from its view (see visualizer/views.py for the fields).
    drawNodes(state, vt) {
      const leaderId = state.leaderId();
      const members = state.members();
      for (const id of this.ids) {
        const v = state.nodes[id] || {};
        const e = this.nodeEls[id];
        const role = v.up ? v.state : "crashed";
        const member = members ? members.get(id) : "voter";
        const outsider = member === undefined;
        e.g.setAttribute("class", `node ${role}${state.selected.has(id) ? " selected" : ""}${outsider ? " outsider" : ""}` +
          (member === "nonvoter" || member === "staging" ? " nonvoter" : ""));
        const fill = v.up && role !== "shutdown" ? termColour(v.term) : "#d9d9d9";
        const ink = v.up ? inkFor(fill) : "#333";
        e.circle.style.display = role === "follower" || role === "crashed" || role === "shutdown" ? "" : "none";
        e.diamond.style.display = role === "candidate" ? "" : "none";
        e.square.style.display = role === "leader" ? "" : "none";
        for (const shape of [e.circle, e.diamond, e.square]) shape.style.fill = fill;
        for (const t of [e.name, e.role, e.term]) t.style.fill = ink;
        e.role.textContent = role === "shutdown" ? "shut down" : role;
        e.term.textContent = `term ${v.term ?? "?"}`;
        e.crashX.style.display = v.up ? "none" : "";
        if (v.up) {
          e.below.textContent = `commit ${v.commit} · applied ${v.applied}`;
          const knows = v.leader ? `leader: ${v.leader}` : "leader: ?";
          e.below2.textContent = v.state === "leader" ? `voted: ${v.voted_for || "—"}` : `${knows} · voted: ${v.voted_for || "—"}`;
        } else {
          e.below.textContent = "commit — · applied —";
          e.below2.textContent = `on disk: term ${v.term}, voted ${v.voted_for || "—"}`;
        }
        if (outsider) e.below2.textContent = "not in the configuration";
        else if (member !== "voter") e.below2.textContent = `${member}: receives the log, never votes`;
        this.drawTimer(e, v, vt);
        this.drawVotes(e, v, id);
        e.title.textContent = `${id}: ${role}, term ${v.term}${id === leaderId ? " (leader)" : ""}` +
          (outsider ? ", not a member of the cluster" : member !== "voter" ? `, ${member}` : "");
      }
    }

    // hashicorp draws each timeout at random in [timeout, 2 × timeout); the
    // timer event says when this one will really fire (fires_at). The arc
    // runs out exactly then: solid until the earliest possible moment
    // (deadline), dashed for the random part after it.
    drawTimer(e, v, vt) {
      const timer = v.up ? v.timer : null;
      if (!timer || v.state === "leader" || v.state === "shutdown") { e.arc.setAttribute("d", ""); return; }
      const firesAt = timer.fires_at ?? timer.deadline + timer.timeout;
      const span = Math.max(1e-9, firesAt - timer.set_at);
      const left = Math.max(0, firesAt - vt);
      e.arc.setAttribute("class", vt < timer.deadline ? "timer-arc" : "timer-arc due");
      e.arc.setAttribute("d", left > 0 ? arcPath(0, 0, NODE_R + 16, left / span) : "");
    }

    drawVotes(e, v, id) {
      const tally = v.up && v.state === "candidate" ? v.tally : null;
      const key = tally ? JSON.stringify(tally) : "";
      if (e.votesKey === key) return;
      e.votesKey = key;
      e.votes.replaceChildren();
      e.tally.textContent = "";
      if (!tally) return;
      const voters = this.ids;
      voters.forEach((voter, i) => {
        const a = -Math.PI / 2 + (2 * Math.PI * i) / voters.length;
        const r = NODE_R + 16;
        const cls = tally.granted.includes(voter) ? "granted" : tally.refused.includes(voter) ? "refused" : "pending";
        const dot = el("circle", { cx: r * Math.cos(a), cy: r * Math.sin(a), r: 9, class: `vote-dot ${cls}` }, e.votes);
        el("title", {}, dot).textContent = `${voter}: ${cls}`;
      });
      e.tally.textContent = `${Words.phaseName(tally.phase)} ${tally.granted.length}/${tally.needed}` +
        (tally.outcome ? ` · ${tally.outcome}` : "");
    }

    drawLinks(links) {
      const cut = new Set(links.map(([a, b]) => `${a}>${b}`));
      for (const [key, [line, mark]] of Object.entries(this.cutEls)) {
        const visible = cut.has(key) ? "visible" : "hidden";
        line.setAttribute("visibility", visible);
        mark.setAttribute("visibility", visible);
      }
    }

    // Messages: create, move, and remove the ones that arrived.
    drawMessages(state, vt) {
      const seen = new Set();
      for (const f of state.flights.values()) {
        if (!state.showHeartbeats && f.kind === "heartbeat") continue;
        const a = this.pos[f.src], b = this.pos[f.dst];
        if (!a || !b) continue;
        seen.add(f.flight);
        let m = this.msgEls.get(f.flight);
        if (!m) {
          m = this.buildMessage(f);
          this.msgEls.set(f.flight, m);
        }
        const span = Math.max(1e-9, f.arrives_at - f.sent_at);
        const frac = Math.max(0, Math.min(1, (vt - f.sent_at) / span));
        // Requests travel slightly left of the line and replies slightly right, so they never overlap.
        const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
        const off = f.dir === "request" ? 9 : -9;
        const startGap = NODE_R / len, endGap = 1 - NODE_R / len;
        const k = startGap + (endGap - startGap) * frac;
        const x = a.x + dx * k + (-dy / len) * off, y = a.y + dy * k + (dx / len) * off;
        m.g.setAttribute("transform", `translate(${x.toFixed(1)} ${y.toFixed(1)})`);
        m.g.classList.toggle("selected", state.inspectedFlight === f.flight);
        m.last = { x, y };
      }
      for (const [id, m] of this.msgEls) {
        if (!seen.has(id)) { m.g.remove(); this.msgEls.delete(id); }
      }
    }

    // Most messages are discs. A snapshot is a wide block (it carries a whole
    // state machine), TimeoutNow a diamond: both are rare and worth spotting.
    buildMessage(f) {
      const g = el("g", { class: `msg ${f.dir} k-${f.kind}` }, this.msgLayer);
      const msg = f.msg || {};
      if (f.kind === "install_snapshot" && f.dir === "request") {
        el("rect", { x: -34, y: -17, width: 68, height: 34, rx: 5, class: "msg-shape" }, g);
      } else if (f.kind === "timeout_now") {
        el("polygon", { points: "0,-20 20,0 0,20 -20,0", class: "msg-shape" }, g);
      } else {
        el("circle", { r: f.kind === "heartbeat" ? 11 : 15, class: "msg-shape" }, g);
      }
      const label = el("text", { y: 4 }, g);
      let text = Words.RPC_SHORT[f.kind] || "?";
      if (f.dir === "response") text = msg.success === true || msg.granted === true ? "✓" : msg.success === false || msg.granted === false ? "✗" : text;
      else if (f.kind === "append_entries" && msg.entries) text = `+${msg.entries.length}`;
      else if (f.kind === "install_snapshot") text = `snap ≤${msg.last_log_index ?? "?"}`;
      label.textContent = text;
      const title = el("title", {}, g);
      title.textContent = `${Words.rpcName(f.kind)} ${f.dir} ${f.src} → ${f.dst} (message #${f.flight})`;
      g.addEventListener("click", (e) => { e.stopPropagation(); this.handlers.inspectFlight(f.flight); });
      return { g, last: null };
    }

    // A lost message leaves a red cross where it was for a moment.
    markDrop(flight, ev) {
      let p = null;
      const m = flight ? this.msgEls.get(flight) : null;
      if (m && m.last) p = m.last;
      else if (ev && this.pos[ev.from] && this.pos[ev.to]) {
        const a = this.pos[ev.from], b = this.pos[ev.to];
        p = { x: a.x + (b.x - a.x) * 0.25, y: a.y + (b.y - a.y) * 0.25 };
      }
      if (!p) return;
      const mark = el("text", { x: p.x, y: p.y + 9, class: "drop-mark" }, this.dropLayer);
      mark.textContent = "✕";
      this.drops.push({ mark, until: performance.now() + 1500 });
    }

    fadeDrops() {
      const now = performance.now();
      this.drops = this.drops.filter((d) => {
        if (d.until > now) { d.mark.setAttribute("opacity", ((d.until - now) / 1500).toFixed(2)); return true; }
        d.mark.remove();
        return false;
      });
    }
  }

  return { View, termColour, inkFor };
})();
