// carewatch console, the views beside the alert queue: the bed board, a resident's page (chart
// and timeline) and the shift handover. Plain JS; data inserted with textContent only.
// It uses the helpers of common.js (window.carewatch) and follows console.js's DOM events.
"use strict";

(() => {
  const BOARD_POLL_S = 3; // bed states arrive by polling /api/board (see docs/console.md)
  const STALE_AFTER_S = 10; // no board from the hub for this long: say the tiles are old
  const SVG = "http://www.w3.org/2000/svg";
  const ACTION_LABELS = {
    acknowledged: "Acknowledged",
    resolved: "Resolved",
    condition_cleared: "Device reported the condition cleared",
    help_requested: "Help requested",
  };
  const ZONE_KEY = "carewatch.board.zone";
  const STATE_WORDS = { open: "unanswered", acknowledged: "acknowledged", resolved: "resolved" };

  const lib = window.carewatch;
  const { make } = lib;
  const $ = lib.byTestId;
  const el = {
    tabs: $("view-tabs"),
    board: $("bed-board"),
    tiles: $("bed-tiles"),
    zones: $("zone-filter"),
    updated: $("board-updated"),
    stale: $("board-stale"),
    resident: $("resident-page"),
    residentName: $("resident-name"),
    residentWhere: $("resident-where"),
    chart: $("resident-chart"),
    timeline: $("resident-timeline"),
    timelineEmpty: $("timeline-empty"),
    handover: $("handover-page"),
    handoverForm: $("handover-form"),
    handoverSince: $("handover-since"),
    handoverSummary: $("handover-summary"),
    handoverOpen: $("handover-open"),
    handoverOpenEmpty: $("handover-open-empty"),
    handoverHappened: $("handover-happened"),
    handoverHappenedEmpty: $("handover-happened-empty"),
  };

  // Places in words come from the hub (hub/registry/labels.py, through the board's tiles); console.js
  // asks here to name an alert's place: `bed(code)` is a bed's tile, `room(site, room)` a room's
  // words, `gateway(site, id)` where a gateway is and the beds it leaves unwatched. `loaded` is
  // false until the first board has arrived. A room without beds has a tile of its own
  // (`kind` "room", `bed` null: hub/console/board.py).
  const places = {
    loaded: false,
    bed: (code) => (board && board.beds.find((t) => t.bed === code)) || null,
    room(site, room) {
      const tile = board && board.beds.find((t) => t.site === site && t.room === room);
      return tile ? tile.place : null;
    },
    gateway(site, id) {
      if (!board) return null;
      let where = null;
      const beds = [];
      for (const tile of board.beds) {
        const found = tile.site === site && tile.gateways.find((g) => g.id === id);
        if (!found) continue;
        where = found.where;
        if (tile.kind !== "room") beds.push({ bed: tile.bed, place: tile.place });
      }
      return { where, beds };
    },
  };
  const status = { boardLoads: 0, boardFailures: 0, boardAt: 0, places };
  window.carewatchViews = status;

  let running = false;
  let pollTimer = null;
  let tickTimer = null;
  let soonTimer = null;
  let board = null; // last answer of /api/board
  let lastBoardOk = 0; // Date.now() of the last board from the hub
  let zoneChoice = localStorage.getItem(ZONE_KEY) || "";
  let residentCode = null; // the resident page shown, if any
  let handoverFrom; // the nurse's chosen start of the handover (ISO), else the hub's default

  // ------------------------------------------------------------------ board

  async function loadBoard() {
    let data;
    try {
      data = await lib.api("GET", "/api/board");
    } catch (_) {
      status.boardFailures += 1;
      showStale();
      return;
    }
    board = data;
    places.loaded = true;
    lastBoardOk = Date.now();
    status.boardLoads += 1;
    status.boardAt = data.at;
    renderBoard();
    document.dispatchEvent(new CustomEvent("carewatch:board", { detail: data }));
  }

  function loadBoardSoon() {
    clearTimeout(soonTimer);
    soonTimer = setTimeout(loadBoard, 150);
  }

  function renderBoard() {
    if (!board) return;
    const zones = board.zones;
    if (zoneChoice && !zones.some((z) => `${z.site}/${z.zone}` === zoneChoice)) zoneChoice = "";
    renderZoneFilter(zones);
    const shown = board.beds.filter((t) => !zoneChoice || `${t.site}/${t.zone}` === zoneChoice);
    el.tiles.replaceChildren(...shown.map(renderTile));
    el.updated.textContent = `Updated ${lib.clockTime(board.at)}`;
    showStale();
  }

  function renderZoneFilter(zones) {
    if (zones.length < 2) {
      el.zones.replaceChildren();
      el.zones.hidden = true;
      return;
    }
    const chip = (key, label) => {
      const button = make("button", { type: "button", class: "chip", testid: "zone-chip", "data-zone": key, "aria-pressed": String(zoneChoice === key) }, label);
      button.addEventListener("click", () => {
        zoneChoice = key;
        localStorage.setItem(ZONE_KEY, key);
        renderBoard();
      });
      return button;
    };
    el.zones.replaceChildren(chip("", "All"), ...zones.map((z) => chip(`${z.site}/${z.zone}`, z.name)));
    el.zones.hidden = false;
  }

  // A bed's tile, or a room's (a room with devices and no bed: smoke in the lounge, an exit door
  // at night). The alerts on it say unanswered or acknowledged in words and by style, each
  // with the device that raised it; an alert about the room shows on every bed of the room.
  function renderTile(tile) {
    const isRoom = tile.kind === "room";
    const li = make("li", {
      class: isRoom ? "tile tile-of-room" : "tile",
      testid: isRoom ? "room-tile" : "bed-tile",
      "data-bed": tile.bed,
      "data-room": tile.room,
      "data-state": tile.state,
      "data-alert-state": tile.alert_state || null,
    });
    const inner = tile.resident_code
      ? make("a", { class: "tile-inner", href: `#resident/${encodeURIComponent(tile.resident_code)}`, testid: "tile-link" })
      : make("div", { class: "tile-inner" });
    const head = make("div", { class: "tile-head" });
    head.append(make("span", { class: "tile-bed", testid: "tile-bed" }, tile.label || tile.bed));
    if (isRoom) head.append(make("span", { class: "tile-room", testid: "tile-place" }, tile.zone_name));
    else head.append(make("span", { class: "tile-room", testid: "tile-place" }, tile.at_home ? `At home · ${tile.place}` : tile.place));
    inner.append(head);
    if (isRoom) {
      inner.append(make("span", { class: "tile-state", testid: "tile-state", "data-code": "room" }, tile.alerts.length ? "Alarm in this room" : "All quiet"));
    } else {
      // The bed's state is the hub's one truth (hub/watch/bed_state.py): the family app and the
      // resident page show the same label.
      const bed = tile.bed_state;
      const state = make("span", { class: "tile-state", testid: "tile-state", "data-code": bed.code }, bed.label);
      const who = make("span", { class: "tile-resident", testid: "tile-resident" }, tile.resident_name || "—");
      const since = make("span", { class: "tile-since", testid: "tile-since" });
      if (bed.since !== null && bed.since !== undefined) {
        since.dataset.since = bed.since;
        since.dataset.exact = bed.since_exact ? "1" : "0";
        since.textContent = sinceText(bed.since, bed.since_exact);
      }
      inner.append(state, who, since);
    }
    if (tile.alerts.length) inner.append(tileAlerts(tile, isRoom));
    if (!isRoom && tile.bed_state.code === "device_trouble") {
      inner.append(
        make("span", { class: "tile-why", testid: "tile-trouble" }, tile.trouble_detail.join(", ")),
        make("span", { class: "tile-last", testid: "tile-last" }, `Last reading: ${tile.bed_state.activity_label}`),
      );
    }
    li.append(inner);
    return li;
  }

  function tileAlerts(tile, isRoom) {
    const list = make("ul", { class: "tile-alerts", testid: "tile-alerts" });
    for (const a of tile.alerts) {
      const open = a.state === "open";
      const row = make("li", { class: "tile-alert-row", testid: "tile-alert-row", "data-alert-state": a.state, "data-about": a.about });
      row.append(
        make("span", { class: "tile-alert-state", testid: "tile-alert-state" }, open ? "Unanswered" : "✓ Acknowledged"),
        " ",
        make("span", { class: "tile-alert", testid: "tile-alert" }, lib.ruleLabel(a.rule)),
      );
      if (a.about === "room" && !isRoom) row.append(make("span", { class: "tile-alert-where", testid: "tile-alert-where" }, " in the room"));
      list.append(row);
    }
    return list;
  }

  function sinceText(since, exact) {
    const seconds = Date.now() / 1000 - since;
    return `${exact ? "for" : "for over"} ${lib.duration(seconds)}`;
  }

  function showStale() {
    const age = (Date.now() - lastBoardOk) / 1000;
    const stale = running && (!lastBoardOk || age > STALE_AFTER_S);
    el.board.dataset.stale = stale ? "true" : "false";
    el.stale.hidden = !stale;
    if (stale) {
      el.stale.textContent = board
        ? `Cannot reach the hub — bed states as of ${lib.clockTime(board.at)}, not current.`
        : "Cannot reach the hub — no bed states yet.";
    }
  }

  function tick() {
    for (const node of [...el.tiles.querySelectorAll("[data-since]"), ...el.residentWhere.querySelectorAll("[data-since]")]) {
      node.textContent = sinceText(Number(node.dataset.since), node.dataset.exact === "1");
    }
    showStale();
  }

  // ---------------------------------------------------------------- routing

  function route() {
    if (!running) return;
    const hash = decodeURIComponent(location.hash.replace(/^#/, ""));
    const [view, code] = hash.split("/");
    el.board.hidden = !(view === "" || view === "board");
    el.resident.hidden = view !== "resident";
    el.handover.hidden = view !== "handover";
    for (const tab of el.tabs.querySelectorAll(".tab")) {
      const current = tab.dataset.view === (view || "board");
      if (current) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
    residentCode = view === "resident" && code ? code : null;
    if (residentCode) loadResident(residentCode);
    else if (view === "handover") loadHandover();
  }

  // ------------------------------------------------------------ resident page

  async function loadResident(code) {
    el.residentName.textContent = code;
    el.residentWhere.textContent = "";
    let timeline;
    let chart;
    try {
      [timeline, chart] = await Promise.all([
        lib.api("GET", `/api/residents/${encodeURIComponent(code)}/timeline?hours=24`),
        lib.api("GET", `/api/residents/${encodeURIComponent(code)}/chart?hours=24`),
      ]);
    } catch (err) {
      if (residentCode !== code) return;
      el.residentWhere.textContent =
        err.status === 404 ? "No such resident in your area." : `Cannot load: ${err.message}`;
      el.chart.replaceChildren();
      el.timeline.replaceChildren();
      return;
    }
    if (residentCode !== code) return; // the nurse has moved on
    const person = timeline.resident;
    el.residentName.textContent = person.name;
    const where = person.bed ? `${person.code} · ${person.place.text} · bed ${person.bed}` : `${person.code} · no bed now`;
    // The state of the bed, as the bed board and the family app say it (hub/watch/bed_state.py).
    const state = make("span", { class: "resident-state", testid: "resident-state", "data-code": person.state.code }, person.state.label);
    const parts = [make("span", { testid: "resident-place" }, where), " · ", state];
    if (person.state.since !== null) {
      parts.push(" ", make("span", { class: "tile-since", "data-since": person.state.since, "data-exact": person.state.since_exact ? "1" : "0" }, sinceText(person.state.since, person.state.since_exact)));
    }
    el.residentWhere.replaceChildren(...parts);
    drawChart(chart);
    renderTimeline(timeline.entries);
  }

  function renderTimeline(entries) {
    el.timeline.replaceChildren(
      ...entries.map((entry) => {
        const li = make("li", { class: "entry", testid: "timeline-entry", "data-kind": entry.kind });
        li.append(
          make("span", { class: "entry-time" }, lib.stampText(entry.at)),
          make("span", { class: "entry-text" }, entryText(entry)),
        );
        return li;
      }),
    );
    el.timelineEmpty.hidden = entries.length > 0;
  }

  function entryText(entry) {
    if (entry.kind === "alert") {
      const a = entry.alert;
      const outcome = a.state === "resolved" ? ` — ${lib.outcomeLabel(a.outcome)}` : ` — ${STATE_WORDS[a.state] || a.state}`;
      return `${lib.ruleLabel(a.rule)} alert (${a.bed ? `bed ${a.bed}` : entry.place})${outcome}`;
    }
    // The hub names people, channels, targets and devices in words (hub/console/resident_history.py).
    if (entry.kind === "action" && entry.action === "escalation_step") {
      // Steps are counted from 0 in the record; people count from 1 (as the alert card does).
      const step = entry.detail.phase === "help" ? "Help step" : `Escalation step ${(entry.detail.step ?? 0) + 1}`;
      const targets = (entry.targets_text || []).join(", ");
      return `${step}${targets ? `: ${targets}` : ""}`;
    }
    if (entry.kind === "action" && entry.action === "notification") {
      const d = entry.detail;
      const why = d.detail ? ` — ${d.detail}` : "";
      if (!entry.recipient_name) return `Nobody to notify for ${entry.target_name || "this step"}${why}`;
      if (!entry.channel) return `${entry.recipient_name} cannot be reached${why}`;
      const who = `${entry.recipient_name} (${entry.channel_name})`;
      if (d.result === "delivered") return `Notified ${who}`;
      return `Notifying ${who}: ${entry.result_name}${why}`;
    }
    if (entry.kind === "action") {
      const what = ACTION_LABELS[entry.action] || lib.ruleLabel(entry.action);
      const by = entry.actor_name ? ` by ${entry.actor_name}` : "";
      const via = entry.channel_name ? ` (${entry.channel_name})` : "";
      const outcome = entry.detail && entry.detail.outcome ? ` — ${lib.outcomeLabel(entry.detail.outcome)}` : "";
      const note = entry.detail && entry.detail.note ? `: “${entry.detail.note}”` : "";
      return `${what}${by}${via}${outcome}${note}`;
    }
    if (entry.kind === "event") {
      const cleared = entry.value === false ? " — cleared" : "";
      return `${lib.ruleLabel(entry.event)}${cleared}${entry.device_name ? ` (${entry.device_name})` : ""}`;
    }
    return entry.text;
  }

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  // Heart and breathing rate as lines over the window, and the share of each bucket spent in
  // bed as a band of bars underneath; gaps where there was no reading.
  function drawChart(chart) {
    const W = 760;
    const H = 300;
    const left = 40;
    const right = 12;
    const top = 12;
    const vitalsH = 190;
    const bandTop = top + vitalsH + 24;
    const bandH = 36;
    const span = chart.end - chart.start;
    const x = (t) => left + ((t - chart.start + chart.bucket_s / 2) / span) * (W - left - right);
    const points = chart.points;
    const highest = Math.max(0, ...points.flatMap((p) => [p.heart_rate || 0, p.respiration_rate || 0]));
    const yMax = Math.max(100, Math.ceil((highest + 5) / 20) * 20);
    const y = (v) => top + vitalsH - (v / yMax) * vitalsH;

    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Heart rate, breathing rate and time in bed over the last 24 hours", "data-testid": "chart-svg" });
    for (let v = 0; v <= yMax; v += 20) {
      root.append(svg("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid" }));
      root.append(svg("text", { x: left - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" }, v));
    }
    const firstHour = Math.ceil(chart.start / 3600) * 3600;
    for (let t = firstHour; t <= chart.end; t += 3 * 3600) {
      const hx = left + ((t - chart.start) / span) * (W - left - right);
      root.append(svg("line", { x1: hx, x2: hx, y1: top, y2: bandTop + bandH, class: "grid" }));
      const d = new Date(t * 1000);
      root.append(svg("text", { x: hx, y: H - 4, class: "axis", "text-anchor": "middle" }, `${lib.pad(d.getHours())}:00`));
    }
    root.append(svg("rect", { x: left, y: bandTop, width: W - left - right, height: bandH, class: "band-bg" }));
    const barW = Math.max(1, ((W - left - right) * chart.bucket_s) / span);
    for (const p of points) {
      if (p.occupancy === null) continue;
      const h = Math.max(1, p.occupancy * bandH);
      root.append(svg("rect", { x: x(p.t) - barW / 2, y: bandTop + bandH - h, width: barW, height: h, class: "band" }));
    }
    for (const [name, testid] of [["heart_rate", "chart-heart"], ["respiration_rate", "chart-breath"]]) {
      const path = linePath(points, name, x, y);
      root.append(svg("path", { d: path, class: `line line-${name}`, "data-testid": testid, "data-points": points.filter((p) => p[name] !== null).length }));
    }
    const any = points.some((p) => p.heart_rate !== null || p.respiration_rate !== null || p.occupancy !== null);
    if (!any) {
      root.append(svg("text", { x: W / 2, y: top + vitalsH / 2, class: "chart-none", "text-anchor": "middle" }, "No readings in the last 24 hours"));
    }
    el.chart.replaceChildren(root);
  }

  function linePath(points, name, x, y) {
    let d = "";
    let pen = false;
    for (const p of points) {
      const v = p[name];
      if (v === null || v === undefined) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(p.t).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
    }
    // A lone reading between gaps still shows: a dot-length stroke.
    return d.replace(/M([\d.]+),([\d.]+) (?=M|$)/g, "M$1,$2 h0.01 ").trim();
  }

  // -------------------------------------------------------------- handover

  function localInputValue(epochS) {
    return `${lib.dateText(epochS)}T${lib.shortTime(epochS)}`;
  }

  async function loadHandover() {
    const params = new URLSearchParams();
    const me = lib.me();
    if (me && me.sites && me.sites.length === 1) params.set("site", me.sites[0].id);
    if (handoverFrom) params.set("since", handoverFrom);
    let report;
    try {
      report = await lib.api("GET", `/api/handover?${params}`);
    } catch (err) {
      el.handoverSummary.textContent = `Cannot load the handover: ${err.message}`;
      return;
    }
    if (document.activeElement !== el.handoverSince) el.handoverSince.value = localInputValue(report.since);
    const c = report.counts;
    const shift = report.shift ? ` (${report.shift} shift)` : "";
    el.handoverSummary.textContent =
      `Since ${lib.stampText(report.since)}${shift}: ${c.opened} opened · ${c.acknowledged} acknowledged · ` +
      `${c.resolved} resolved · ${c.still_open} still open`;
    el.handoverOpen.replaceChildren(...report.still_open.map((a) => handoverItem(a, "handover-open-item")));
    el.handoverHappened.replaceChildren(...report.happened.map((a) => handoverItem(a, "handover-item")));
    el.handoverOpenEmpty.hidden = report.still_open.length > 0;
    el.handoverHappenedEmpty.hidden = report.happened.length > 0;
  }

  // A room's or gateway's alert named as console.js names it on its card (hub/registry/labels.py's words).
  function placeHeadline(a) {
    if (a.room || a.room_name) return places.room(a.site, a.room) || roomWords(a.room_name || a.room);
    if (a.gateway) return `Gateway ${a.gateway}`;
    return a.zone_name || "the whole site";
  }

  // As hub/registry/labels.py says a room: "Room 101" for a numbered room, else its own name.
  function roomWords(name) {
    return /^\d/.test(name) ? `Room ${name}` : name;
  }

  function handoverItem(a, testid) {
    const li = make("li", { class: "handover-item", testid, "data-alert-id": a.id, "data-state": a.state });
    const where = a.bed ? `bed ${a.bed}` : placeHeadline(a);
    const head = make("div", { class: "handover-what" });
    head.append(make("strong", {}, lib.ruleLabel(a.rule)), make("span", {}, ` · ${where}`));
    if (a.resident_name) {
      head.append(make("span", {}, " · "));
      head.append(make("a", { href: `#resident/${encodeURIComponent(a.resident_code)}` }, a.resident_name));
    }
    const steps = [`opened ${lib.stampText(a.opened_at)}`];
    if (a.acknowledged_at) steps.push(`acknowledged by ${a.acknowledged_by_name} at ${lib.clockTime(a.acknowledged_at)}`);
    if (a.resolved_at) steps.push(`resolved by ${a.resolved_by_name} at ${lib.clockTime(a.resolved_at)} — ${lib.outcomeLabel(a.outcome)}`);
    li.append(head, make("div", { class: "handover-steps", testid: "handover-steps" }, steps.join(" · ")));
    if (a.note) li.append(make("div", { class: "handover-note" }, a.note));
    return li;
  }

  el.handoverForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = el.handoverSince.value;
    handoverFrom = value ? new Date(value).toISOString() : undefined;
    loadHandover();
  });

  // ------------------------------------------------------------ life cycle

  function start() {
    if (running) return;
    running = true;
    lastBoardOk = 0;
    loadBoard();
    clearInterval(pollTimer);
    pollTimer = setInterval(loadBoard, BOARD_POLL_S * 1000);
    clearInterval(tickTimer);
    tickTimer = setInterval(tick, 1000);
    route();
  }

  function stop() {
    running = false;
    clearInterval(pollTimer);
    clearInterval(tickTimer);
    clearTimeout(soonTimer);
    board = null;
    el.tiles.replaceChildren();
    el.stale.hidden = true;
  }

  document.addEventListener("carewatch:start", start);
  document.addEventListener("carewatch:stop", stop);
  document.addEventListener("carewatch:resync", () => {
    if (!running) return;
    loadBoard();
    route();
  });
  document.addEventListener("carewatch:alert", (event) => {
    if (!running) return;
    loadBoardSoon();
    const alert = event.detail;
    if (!el.handover.hidden) loadHandover();
    if (residentCode && alert && alert.resident_code === residentCode) loadResident(residentCode);
  });
  window.addEventListener("hashchange", route);
  if (lib.me()) start(); // signed in before this script ran
})();
