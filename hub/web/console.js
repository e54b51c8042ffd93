// carewatch night console: the live alert queue for night staff.
// Plain JS, no framework. All data is inserted with textContent, never as HTML.
"use strict";

(() => {
  const PRIORITY_RANK = { emergency: 0, routine: 1 };
  const STATE_RANK = { open: 0, acknowledged: 1, resolved: 2 };
  const RECENT_MAX = 8;
  const REMINDER_S = 30; // repeat the alarm while an alert stays unacknowledged
  const HEALTH_POLL_S = 15;
  const ESCALATION_POLL_S = 20; // escalation steps fire on the hub's timers, between alert changes

  // Exposed for tests and for anyone debugging at the nurses' station.
  const status = {
    alarmsSounded: 0, // alarm patterns played for new (or repeated) open alerts
    remindersSounded: 0, // reminder patterns for alerts left open
    alarmsMissed: 0, // alarms that were due while the sound was off
    soundState: "off",
    connection: "offline",
  };
  window.carewatchConsole = status;

  const lib = window.carewatch;
  const { make, api, clockTime, stampText, duration, ago, ruleLabel, outcomeLabel } = lib;
  const $ = lib.byTestId;
  const el = {
    loading: $("loading"),
    login: $("login-panel"),
    console: $("console"),
    queue: $("alert-queue"),
    empty: $("queue-empty"),
    activeCount: $("active-count"),
    summary: $("queue-summary"),
    recent: $("recent-resolved"),
    recentList: $("recent-list"),
    conn: $("connection-state"),
    connBanner: $("connection-banner"),
    brokerBanner: $("broker-banner"),
    nobodyBanner: $("nobody-banner"),
    sound: $("sound-toggle"),
    user: $("current-user"),
    logout: $("logout-button"),
    supervisorLink: $("supervisor-link"),
    site: $("site-name"),
    clock: $("clock"),
  };

  const active = new Map(); // id -> {alert, stamp}
  const recent = new Map(); // id -> alert (resolved)
  const cards = new Map(); // id -> card element parts
  let stamp = 0; // increases with every alert update applied
  let source = null;
  let reconnectTimer = null;
  let healthTimer = null;
  let reminderTimer = null;
  let escalationTimer = null;

  // ---------------------------------------------------------------- helpers

  function compareAlerts(a, b) {
    const pa = PRIORITY_RANK[a.priority] ?? 2;
    const pb = PRIORITY_RANK[b.priority] ?? 2;
    if (pa !== pb) return pa - pb;
    if (a.opened_at !== b.opened_at) return b.opened_at - a.opened_at;
    return b.id - a.id;
  }

  // The lifecycle only moves forward, so a stale copy (an older snapshot racing a live
  // event) can be recognised and ignored.
  function progress(a) {
    return [STATE_RANK[a.state] ?? 0, a.count || 1, a.cleared_at ? 1 : 0];
  }

  function isOlder(incoming, known) {
    const x = progress(incoming);
    const y = progress(known);
    for (let i = 0; i < x.length; i += 1) {
      if (x[i] !== y[i]) return x[i] < y[i];
    }
    return false;
  }

  // The other views of the console (console_views.js: bed board, resident page, handover)
  // hear what happens here as DOM events on the document: carewatch:start, carewatch:stop,
  // carewatch:resync (the stream is back: reload everything) and carewatch:alert.
  function announce(name, detail) {
    document.dispatchEvent(new CustomEvent(`carewatch:${name}`, { detail }));
  }

  // ----------------------------------------------------------------- sound

  let audio = null;

  // Must be called from a user gesture (click, key press) the first time.
  function unlockSound() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) {
      setSoundState("unsupported");
      return;
    }
    try {
      if (!audio) {
        audio = new Ctx();
        audio.addEventListener("statechange", () => setSoundState(audio.state === "running" ? "on" : "off"));
      }
      if (audio.state !== "running") {
        audio.resume().then(
          () => setSoundState(audio.state === "running" ? "on" : "off"),
          () => setSoundState("off"),
        );
      }
    } catch (_) {
      setSoundState("off");
    }
    setSoundState(audio && audio.state === "running" ? "on" : "off");
  }

  function setSoundState(state) {
    status.soundState = state;
    el.sound.dataset.state = state;
    if (state === "on") el.sound.textContent = "Sound on — tap to test";
    else if (state === "unsupported") el.sound.textContent = "No sound on this device";
    else el.sound.textContent = "Sound off — tap to enable";
  }

  // Three rising two-tone beeps: distinct from a phone ringtone, audible across a corridor.
  function playPattern(repeats) {
    if (!audio || audio.state !== "running") return false;
    const t0 = audio.currentTime + 0.05;
    const master = audio.createGain();
    master.gain.value = 0.35;
    master.connect(audio.destination);
    const beep = (at, freq, len) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "square";
      osc.frequency.setValueAtTime(freq, at);
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(1, at + 0.01);
      gain.gain.setValueAtTime(1, at + len - 0.03);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + len);
      osc.connect(gain).connect(master);
      osc.start(at);
      osc.stop(at + len + 0.02);
    };
    for (let r = 0; r < repeats; r += 1) {
      const base = t0 + r * 1.1;
      beep(base, 880, 0.16);
      beep(base + 0.2, 1175, 0.16);
      beep(base + 0.4, 880, 0.16);
      beep(base + 0.6, 1175, 0.3);
    }
    setTimeout(() => master.disconnect(), (repeats * 1.1 + 0.5) * 1000);
    return true;
  }

  function soundAlarm() {
    if (playPattern(2)) status.alarmsSounded += 1;
    else status.alarmsMissed += 1;
  }

  function testSound() {
    playPattern(1);
  }

  // An open alert keeps reminding until staff acknowledge it, unless its policy lets the
  // family's "I'm handling it" quiet the console (summary.console_quiet).
  const quiet = new Set();
  function needsReminder() {
    return [...active.values()].some(({ alert }) => alert.state === "open" && !quiet.has(alert.id));
  }

  function scheduleReminder() {
    const hasOpen = needsReminder();
    if (!hasOpen) {
      clearInterval(reminderTimer);
      reminderTimer = null;
      return;
    }
    if (reminderTimer) return;
    reminderTimer = setInterval(() => {
      const stillOpen = needsReminder();
      if (!stillOpen) {
        scheduleReminder();
        return;
      }
      if (playPattern(1)) status.remindersSounded += 1;
    }, REMINDER_S * 1000);
  }

  // ------------------------------------------------------------ alert state

  // Apply one alert from the stream or a fetch. Returns true when it should sound.
  function applyAlert(alert) {
    const known = active.get(alert.id);
    if (known && isOlder(alert, known.alert)) return false;
    if (recent.has(alert.id) && alert.state !== "resolved") return false; // a stale copy
    if (alert.state === "resolved") {
      active.delete(alert.id);
      removeCard(alert.id);
      recent.set(alert.id, alert);
      renderRecent();
      return false;
    }
    stamp += 1;
    active.set(alert.id, { alert, stamp });
    renderCard(alert);
    return alert.state === "open" && (!known || (alert.count || 1) > (known.alert.count || 1));
  }

  function afterChange() {
    orderQueue();
    renderSummary();
    scheduleReminder();
  }

  async function loadSnapshot() {
    const startedAt = stamp;
    const [activeData, resolvedData] = await Promise.all([
      api("GET", "/api/alerts?state=active&limit=500"),
      api("GET", "/api/alerts?state=resolved&limit=20").catch(() => ({ alerts: [] })),
    ]);
    const seen = new Set();
    let alarm = false;
    for (const alert of activeData.alerts) {
      seen.add(alert.id);
      // Open alerts new to this console sound once: they may have arrived during a blip.
      if (applyAlert(alert)) alarm = true;
    }
    // An alert that left the active list while we were away; only drop copies that are
    // not newer than the request.
    for (const [id, entry] of [...active.entries()]) {
      if (!seen.has(id) && entry.stamp <= startedAt) {
        active.delete(id);
        removeCard(id);
      }
    }
    for (const alert of resolvedData.alerts) {
      if (!active.has(alert.id)) recent.set(alert.id, alert);
    }
    renderRecent();
    afterChange();
    if (alarm) soundAlarm();
  }

  // ------------------------------------------------------------- rendering

  function renderCard(alert) {
    let parts = cards.get(alert.id);
    if (!parts) {
      const card = make("li", { class: "card", testid: "alert-card", "data-alert-id": alert.id });
      const body = make("div", { class: "card-body" });
      const actions = make("div", { class: "card-actions" });
      const error = make("p", { class: "card-error", testid: "alert-error", role: "alert", hidden: true });
      const formSlot = make("div", { class: "card-form" });
      const escalation = make("div", { class: "escalation", testid: "alert-escalation", hidden: true });
      card.append(body, actions, escalation, error, formSlot);
      parts = { card, body, actions, escalation, error, formSlot, form: null, actionsKey: "" };
      cards.set(alert.id, parts);
      el.queue.append(card);
    }
    refreshEscalation(alert.id);
    const { card } = parts;
    card.dataset.state = alert.state;
    card.dataset.priority = alert.priority;
    card.dataset.rule = alert.rule;
    card.setAttribute("aria-label", `${alert.state === "open" ? "Open" : "Acknowledged"} ${ruleLabel(alert.rule)}, ${alertPlace(alert).headline}`);
    parts.body.replaceChildren(...cardBody(alert));
    parts.placeKey = placeKey(alert);
    const key = `${alert.state}`;
    if (parts.actionsKey !== key) {
      parts.actions.replaceChildren(...cardActions(alert, parts));
      parts.actionsKey = key;
    }
  }

  // Where an alert happened, in the hub's words (hub/labels.py): every alert the hub sends
  // (list, stream, actions) carries its `place`: headline, room, zone, text and, for a gateway,
  // the beds it leaves unwatched.
  function alertPlace(alert) {
    return alert.place || { headline: alert.bed || alert.site || "—", room: "", zone: alert.zone_name || "", text: "", unwatched: [] };
  }

  function placeKey(alert) {
    return JSON.stringify(alertPlace(alert));
  }

  function cardBody(alert) {
    const place = alertPlace(alert);
    const head = make("div", { class: "card-head" });
    const stateLabel = alert.state === "open" ? "NEW" : "ACKNOWLEDGED";
    head.append(
      make("span", { class: "badge", testid: "alert-state" }, stateLabel),
      make("span", { class: "rule", testid: "alert-rule" }, ruleLabel(alert.rule)),
      make("span", { class: "bed", testid: "alert-bed" }, place.headline),
    );
    if ((alert.count || 1) > 1) {
      head.append(make("span", { class: "repeat", testid: "alert-count" }, `×${alert.count} triggers`));
    }

    const where = make("div", { class: "where" });
    where.append(make("span", { class: "room", testid: "alert-room" }, place.room));
    if (place.zone) where.append(make("span", { class: "zone", testid: "alert-zone" }, place.zone));

    const who = make("div", { class: "who", testid: "alert-resident" });
    if (alert.resident_name || alert.resident_code) {
      who.append(make("span", { class: "resident-name" }, alert.resident_name || "Resident"));
      if (alert.resident_code) {
        who.append(
          make("span", { class: "resident-code" }, alert.resident_code),
          make(
            "a",
            { class: "resident-link", testid: "alert-resident-link", href: `#resident/${encodeURIComponent(alert.resident_code)}` },
            "Resident page",
          ),
        );
      }
    } else if (alert.bed) {
      who.append(make("span", { class: "resident-none" }, "No resident recorded for this bed"));
    } else if (alert.gateway && !alert.room) {
      // A gateway alert: the beds it leaves unwatched.
      const beds = place.unwatched || [];
      const text = beds.length
        ? `Beds unwatched: ${beds.map((b) => `${b.place} (${b.bed})`).join(", ")}`
        : "No bed is on this gateway";
      who.append(make("span", { class: "resident-none", testid: "alert-unwatched" }, text));
    } else {
      who.append(make("span", { class: "resident-none" }, "Room device"));
    }

    const when = make("div", { class: "when" });
    when.append(
      make("span", { class: "opened", testid: "alert-opened" }, `Opened ${stampText(alert.opened_at)}`),
      make("span", { class: "ago", testid: "alert-ago", "data-since": alert.opened_at }, ago(alert.opened_at)),
    );

    const notes = make("div", { class: "notes" });
    if (alert.late_s !== null && alert.late_s !== undefined) {
      notes.append(
        make(
          "span",
          { class: "note note-late", testid: "alert-late" },
          `Late by ${duration(alert.late_s)} — happened at ${stampText(alert.sensed_at)}`,
        ),
      );
    }
    if (alert.cleared_at) {
      notes.append(
        make(
          "span",
          { class: "note note-cleared", testid: "alert-cleared" },
          `Device reports cleared at ${clockTime(alert.cleared_at)} — still needs a person`,
        ),
      );
    }
    if (alert.acknowledged_by) {
      const via = alert.acknowledged_via ? ` (${alert.acknowledged_via})` : "";
      notes.append(
        make(
          "span",
          { class: "note note-acked", testid: "alert-acked" },
          `Acknowledged by ${alert.acknowledged_by} at ${clockTime(alert.acknowledged_at)}${via}`,
        ),
      );
    }
    const nodes = [head, where, who, when];
    if (notes.childElementCount) nodes.push(notes);
    return nodes;
  }

  function cardActions(alert, parts) {
    const buttons = [];
    if (alert.state === "open") {
      const ack = make("button", { type: "button", class: "btn btn-ack", testid: "acknowledge-button" }, "Acknowledge");
      ack.addEventListener("click", () => acknowledge(alert.id, ack, parts));
      buttons.push(ack);
    }
    const resolve = make("button", { type: "button", class: "btn btn-resolve", testid: "resolve-button" }, "Resolve…");
    resolve.addEventListener("click", () => openResolveForm(alert.id, parts));
    buttons.push(resolve);
    return buttons;
  }

  function showCardError(parts, message) {
    parts.error.textContent = message;
    parts.error.hidden = !message;
  }

  async function acknowledge(id, button, parts) {
    unlockSound();
    button.disabled = true;
    button.textContent = "Acknowledging…";
    showCardError(parts, "");
    try {
      const alert = await api("POST", `/api/alerts/${id}/acknowledge`, { channel: "console" });
      applyAlert(alert);
      afterChange();
    } catch (err) {
      button.disabled = false;
      button.textContent = "Acknowledge";
      if (err.status === 409) {
        await refreshOne(id);
        showCardError(cards.get(id) || parts, "Someone else has already taken this alert.");
      } else if (err.status !== 401) {
        showCardError(parts, `Not acknowledged: ${err.message}`);
      }
    }
  }

  async function refreshOne(id) {
    try {
      const alert = await api("GET", `/api/alerts/${id}`);
      applyAlert(alert);
      afterChange();
    } catch (_) {
      /* the stream will bring it */
    }
  }

  async function openResolveForm(id, parts) {
    unlockSound();
    if (!Object.keys(lib.outcomes()).length) {
      try {
        await lib.loadOutcomes();
      } catch (err) {
        if (err.status !== 401) showCardError(parts, `Cannot load the outcomes: ${err.message}`);
        return;
      }
    }
    if (parts.form || !cards.has(id)) {
      if (parts.form) parts.form.querySelector("select").focus();
      return;
    }
    const form = make("form", { class: "resolve-form", testid: "resolve-form", novalidate: true });
    const selectId = `outcome-${id}`;
    const noteId = `note-${id}`;
    const select = make("select", { id: selectId, testid: "resolve-outcome", required: true });
    select.append(make("option", { value: "" }, "Choose what happened…"));
    for (const [code, label] of Object.entries(lib.outcomes())) {
      select.append(make("option", { value: code }, label));
    }
    const note = make("textarea", { id: noteId, testid: "resolve-note", rows: 2, maxlength: 2000, placeholder: "Optional note for the record" });
    const submit = make("button", { type: "submit", class: "btn btn-primary", testid: "resolve-submit" }, "Resolve alert");
    const cancel = make("button", { type: "button", class: "btn btn-quiet", testid: "resolve-cancel" }, "Cancel");
    const row = make("div", { class: "form-row" });
    row.append(submit, cancel);
    form.append(
      make("label", { for: selectId }, "Outcome"),
      select,
      make("label", { for: noteId }, "Note (optional)"),
      note,
      row,
    );
    cancel.addEventListener("click", () => {
      form.remove();
      parts.form = null;
      showCardError(parts, "");
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!select.value) {
        showCardError(parts, "Choose an outcome first.");
        select.focus();
        return;
      }
      submit.disabled = true;
      submit.textContent = "Resolving…";
      showCardError(parts, "");
      const body = { outcome: select.value, channel: "console" };
      const text = note.value.trim();
      if (text) body.note = text;
      try {
        const alert = await api("POST", `/api/alerts/${id}/resolve`, body);
        applyAlert(alert);
        afterChange();
      } catch (err) {
        submit.disabled = false;
        submit.textContent = "Resolve alert";
        if (err.status === 409) {
          await refreshOne(id);
          const still = cards.get(id);
          if (still) showCardError(still, "This alert was already resolved by someone else.");
        } else if (err.status !== 401) {
          showCardError(parts, `Not resolved: ${err.message}`);
        }
      }
    });
    parts.form = form;
    parts.formSlot.append(form);
    select.focus();
  }

  // What the record shows of the response: the step reached and whom it reached, the steps
  // that reached nobody, staff who declined, and what the family said. Nothing here claims that
  // someone was told unless a delivery is recorded.
  const CHANNEL_WORDS = { console: "console", push: "phone", apprise: "message" };
  const nobodyReached = new Map(); // id -> the latest step that reached nobody

  // Each change of an alert asks for its escalation again; an older answer that comes back
  // after a newer question must not undo it (a "nobody reached" banner hidden by the answer
  // to the question asked when the alert opened).
  const escalationAsked = new Map();

  async function refreshEscalation(id) {
    const asked = (escalationAsked.get(id) || 0) + 1;
    escalationAsked.set(id, asked);
    let summary;
    try {
      summary = await api("GET", `/api/alerts/${id}/escalation`);
    } catch (_) {
      return; // the next alert change or poll tries again
    }
    if (escalationAsked.get(id) !== asked) return; // a newer answer is on its way
    const parts = cards.get(id);
    if (!parts) return;
    const lines = [];
    const note = (kind, testid, text) => lines.push(make("span", { class: `note note-${kind}`, testid }, text));
    const reached = [...new Map((summary.reached || []).map((r) => [`${r.name}/${r.channel}`, r])).values()];
    const reachedText = reached.map((r) => `${r.name} (${CHANNEL_WORDS[r.channel] || r.channel})`).join(", ");
    if (summary.escalation_step) {
      note("escalation", "alert-escalation-step", `Escalation step ${summary.escalation_step}${reachedText ? ` · reached ${reachedText}` : ""}`);
    } else if (reachedText) {
      note("escalation", "alert-notified", `Reached ${reachedText}`);
    }
    for (const missed of summary.nobody_reached || []) {
      const step = missed.phase === "help" ? "Help request" : missed.phase === "realert" ? "Reminder" : `Step ${missed.step}`;
      note("nobody", "alert-nobody-reached", `${step}: nobody reached — ${missed.reason}`);
    }
    if ((summary.declined_by || []).length) note("declined", "alert-declined", `Declined by ${summary.declined_by.join(", ")}`);
    const askers = summary.help_requested_by || [];
    if (askers.length) note("help", "alert-help", `Help requested by ${askers.join(", ")}`);
    if (summary.family_handling) {
      note("family", "alert-family-handling", `Family handling since ${clockTime(summary.family_handling.since)} (${summary.family_handling.by})`);
    }
    if ((summary.family_seen_by || []).length) note("family", "alert-family-seen", `Seen by family: ${summary.family_seen_by.join(", ")}`);
    parts.escalation.replaceChildren(...lines);
    parts.escalation.hidden = lines.length === 0;
    const missed = summary.nobody_reached || [];
    if (summary.console_quiet) quiet.add(id);
    else quiet.delete(id);
    if (summary.nobody_reached_at) nobodyReached.set(id, missed[missed.length - 1] || null);
    else nobodyReached.delete(id);
    renderNobodyBanner();
  }

  // "NOBODY REACHED" across the top of every console of the site while such an alert is open.
  function renderNobodyBanner() {
    const texts = [];
    for (const [id, missed] of nobodyReached) {
      const entry = active.get(id);
      const alert = entry && entry.alert;
      // The escalation's answer says nobody was reached; the alert may still be the copy from
      // before that (a snapshot that crossed the stream's update): its state is what counts.
      if (!alert || alert.state !== "open") continue;
      const where = [alert.resident_name, alert.bed || alert.room_name, alert.zone_name].filter(Boolean).join(" · ");
      texts.push(`${ruleLabel(alert.rule)}${where ? ` — ${where}` : ""}${missed ? ` (${missed.reason})` : ""}`);
    }
    const banner = el.nobodyBanner;
    if (!banner) return;
    banner.hidden = texts.length === 0;
    banner.replaceChildren(
      make("strong", {}, "NOBODY REACHED"),
      make("span", {}, ` ${texts.join("; ")}. Go now, or call for help.`),
    );
    for (const [id, parts] of cards) parts.card.dataset.nobody = nobodyReached.has(id) ? "reached-nobody" : "";
  }

  function refreshAllEscalations() {
    for (const id of cards.keys()) refreshEscalation(id);
  }

  function removeCard(id) {
    const parts = cards.get(id);
    if (!parts) return;
    parts.card.remove();
    cards.delete(id);
    escalationAsked.delete(id);
    nobodyReached.delete(id);
    renderNobodyBanner();
  }

  function orderQueue() {
    const sorted = [...active.values()].map(({ alert }) => alert).sort(compareAlerts);
    // Move only what is out of place, so a focused control inside a card keeps its focus.
    let cursor = el.queue.firstElementChild;
    for (const alert of sorted) {
      const card = cards.get(alert.id).card;
      if (card === cursor) cursor = cursor.nextElementSibling;
      else el.queue.insertBefore(card, cursor);
    }
  }

  function renderSummary() {
    const all = [...active.values()].map(({ alert }) => alert);
    const open = all.filter((a) => a.state === "open").length;
    const acked = all.length - open;
    el.activeCount.textContent = String(all.length);
    el.empty.hidden = all.length > 0;
    el.queue.hidden = all.length === 0;
    el.summary.textContent = all.length ? `${open} waiting · ${acked} being handled` : "";
    document.title = open ? `(${open}) carewatch — ALERT` : "carewatch — night console";
    document.body.classList.toggle("has-open", open > 0);
    const who = lib.me();
    const sites = (who && who.sites) || [];
    el.site.textContent = sites.map((site) => site.name).join(" · ");
    el.site.hidden = sites.length === 0;
  }

  function renderRecent() {
    const items = [...recent.values()]
      .sort((a, b) => (b.resolved_at || 0) - (a.resolved_at || 0))
      .slice(0, RECENT_MAX);
    for (const id of [...recent.keys()]) {
      if (!items.some((a) => a.id === id)) recent.delete(id);
    }
    el.recentList.replaceChildren(
      ...items.map((a) => {
        const li = make("li", { class: "recent-item", testid: "resolved-item", "data-alert-id": a.id });
        const who = a.resident_name ? ` · ${a.resident_name}` : "";
        li.append(
          make("span", { class: "recent-what" }, `${ruleLabel(a.rule)} · ${alertPlace(a).headline}${who}`),
          make("span", { class: "recent-outcome", testid: "resolved-outcome" }, outcomeLabel(a.outcome)),
          make(
            "span",
            { class: "recent-by" },
            `by ${a.resolved_by || "?"} at ${a.resolved_at ? clockTime(a.resolved_at) : "?"}`,
          ),
        );
        if (a.note) li.append(make("span", { class: "recent-note" }, a.note));
        return li;
      }),
    );
    el.recent.hidden = items.length === 0;
  }

  function tick() {
    el.clock.textContent = lib.shortTime(Date.now() / 1000);
    for (const node of el.queue.querySelectorAll("[data-since]")) {
      node.textContent = ago(Number(node.dataset.since));
    }
  }

  // ------------------------------------------------------------ connection

  function setConnection(state) {
    status.connection = state;
    el.conn.dataset.state = state;
    el.conn.textContent = { live: "Live", connecting: "Connecting…", lost: "Reconnecting…", offline: "Not connected" }[state];
    el.connBanner.hidden = state !== "lost";
  }

  function connect() {
    disconnect();
    setConnection("connecting");
    const es = new EventSource("/api/stream");
    source = es;
    es.addEventListener("hello", () => {
      if (source !== es) return;
      setConnection("live");
      loadSnapshot().catch(() => {
        /* a failing snapshot shows up as the next stream error */
      });
      announce("resync");
    });
    es.addEventListener("alert", (event) => {
      if (source !== es) return;
      let alert;
      try {
        alert = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      const sound = applyAlert(alert);
      afterChange();
      if (sound) soundAlarm();
      announce("alert", alert);
    });
    es.addEventListener("error", () => {
      if (source !== es) return;
      setConnection("lost");
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (the hub answered an error, e.g. the session ended): find
        // out why, then try again ourselves.
        clearTimeout(reconnectTimer);
        reconnectTimer = setTimeout(checkSessionAndReconnect, 3000);
      }
    });
  }

  async function checkSessionAndReconnect() {
    try {
      await lib.whoAmI();
      connect();
    } catch (err) {
      if (err.status === 401) showLogin("Your session has ended. Please sign in again.");
      else reconnectTimer = setTimeout(checkSessionAndReconnect, 3000);
    }
  }

  function disconnect() {
    clearTimeout(reconnectTimer);
    if (source) {
      source.close();
      source = null;
    }
  }

  async function pollHealth() {
    try {
      const response = await fetch("/api/health", { cache: "no-store" });
      const health = await response.json();
      el.brokerBanner.hidden = health.broker_connected !== false;
    } catch (_) {
      /* the stream banner covers a hub that cannot be reached */
    }
  }

  // ------------------------------------------------------------ login flow

  const login = lib.loginForm(startConsole);
  // The sign-in tap is the user gesture that lets the alarm play.
  $("login-form").addEventListener("submit", unlockSound);
  lib.onSessionEnded(showLogin);

  function showLogin(message) {
    disconnect();
    clearInterval(healthTimer);
    clearInterval(escalationTimer);
    clearInterval(reminderTimer);
    reminderTimer = null;
    active.clear();
    recent.clear();
    for (const id of [...cards.keys()]) removeCard(id);
    setConnection("offline");
    el.loading.hidden = true;
    el.console.hidden = true;
    el.login.hidden = false;
    el.user.hidden = true;
    el.logout.hidden = true;
    el.supervisorLink.hidden = true;
    el.sound.hidden = true;
    el.site.hidden = true;
    el.brokerBanner.hidden = true;
    login.reset(message);
    document.title = "carewatch — sign in";
    announce("stop");
    login.focus();
  }

  async function startConsole(who) {
    if (who.role === "family") {
      location.replace("/family"); // the family app is theirs; this console shows staff's data
      return;
    }
    el.loading.hidden = true;
    el.login.hidden = true;
    el.console.hidden = false;
    el.user.textContent = lib.userLabel(who);
    el.user.hidden = false;
    el.logout.hidden = false;
    el.supervisorLink.hidden = !who.permissions.includes("figures.read");
    el.sound.hidden = false;
    setSoundState(audio && audio.state === "running" ? "on" : "off");
    renderSummary();
    await lib.loadOutcomes().catch(() => undefined); // loaded again when a resolve form opens
    connect();
    pollHealth();
    clearInterval(healthTimer);
    healthTimer = setInterval(pollHealth, HEALTH_POLL_S * 1000);
    clearInterval(escalationTimer);
    escalationTimer = setInterval(refreshAllEscalations, ESCALATION_POLL_S * 1000);
    announce("start", who);
  }

  el.logout.addEventListener("click", async () => {
    await lib.signOut();
    showLogin("");
  });

  el.sound.addEventListener("click", () => {
    if (status.soundState === "on") testSound();
    else unlockSound();
  });

  // Any tap on the page may unlock the sound if it is still off (e.g. after a reload).
  document.addEventListener(
    "pointerdown",
    () => {
      if (lib.me() && status.soundState === "off") unlockSound();
    },
    { capture: true },
  );

  window.addEventListener("pagehide", disconnect);

  // A new board may name places better (a bed's room, a gateway's beds): say them again.
  document.addEventListener("carewatch:board", () => {
    for (const [id, parts] of cards) {
      const entry = active.get(id);
      if (!entry || parts.placeKey === placeKey(entry.alert)) continue;
      parts.body.replaceChildren(...cardBody(entry.alert));
      parts.placeKey = placeKey(entry.alert);
    }
  });

  async function boot() {
    tick();
    setInterval(tick, 1000);
    try {
      await startConsole(await lib.whoAmI());
    } catch (err) {
      showLogin(err.status === 401 ? "" : err.message);
    }
  }

  boot();
})();
