// carewatch night console: the live alert queue for night staff, an alarm panel.
// Plain JS, no framework. All data is inserted with textContent, never as HTML.
"use strict";

(() => {
  const PRIORITY_RANK = { emergency: 0, routine: 1, trouble: 2 };
  const STATE_RANK = { open: 0, acknowledged: 1, resolved: 2 };
  const RECENT_MAX = 8;
  // An unanswered alert steps up as it waits: the telecare targets (docs/console.md).
  const WAITING_S = 60;
  const OVERDUE_S = 180;
  // The alarm repeats while an alert stays unanswered, faster as it waits (index: urgency).
  const REMINDER_S = [30, 20, 10];
  const TROUBLE_REMINDER_S = 120; // a trouble alert (a battery, a device offline) reminds softly
  const LOST_TONE_S = 30; // the connection-lost tone repeats while the hub cannot be reached
  const HEALTH_POLL_S = 5; // a hub that stops answering is noticed within a few seconds
  const HEALTH_TIMEOUT_S = 4;
  const OFFLINE_RETRY_S = 3;
  const ESCALATION_POLL_S = 20; // escalation steps fire on the hub's timers, between alert changes
  const LAST_ALERTS_KEY = "carewatch.console.lastAlerts"; // read-only copy for a start without the hub
  const OFFLINE_TEXT = "No contact with the hub — new alerts are not reaching this screen.";
  const LOST_TEXT =
    "Lost contact with the hub — reconnecting… New alerts are not reaching this screen; alerts and bed states here may be out of date.";
  const NOT_OFFLINE = "Not available while the hub is unreachable";

  // Exposed for tests and for anyone debugging at the nurses' station.
  const status = {
    alarmsSounded: 0, // alarm patterns played for new (or repeated) open alerts
    remindersSounded: 0, // reminder patterns for alerts left unanswered
    alarmsMissed: 0, // alarms that were due while the sound was off
    soundState: "off",
    connection: "offline",
    readOnly: false, // started without the hub: the last known alerts, read-only
  };
  window.carewatchConsole = status;
  // Every pattern the page actually played: {pattern, level, reason}. Instrumentation for tests.
  const soundLog = { played: [] };
  window.carewatchSound = soundLog;

  const lib = window.carewatch;
  const { make, api, clockTime, stampText, duration, ago, ruleLabel, outcomeLabel } = lib;
  const $ = lib.byTestId;
  const el = {
    loading: $("loading"),
    login: $("login-panel"),
    console: $("console"),
    head: $("page-head"),
    main: document.querySelector("main"),
    queue: $("alert-queue"),
    queueCol: $("queue-column"),
    empty: $("queue-empty"),
    activeCount: $("active-count"),
    summary: $("queue-summary"),
    recent: $("recent-resolved"),
    recentList: $("recent-list"),
    conn: $("connection-state"),
    connBanner: $("connection-banner"),
    brokerBanner: $("broker-banner"),
    nobodyBanner: $("nobody-banner"),
    smokeBanner: $("smoke-banner"),
    alarmState: $("alarm-state"),
    overlay: $("arm-overlay"),
    armButton: $("arm-button"),
    armWaiting: $("arm-waiting"),
    sound: $("sound-toggle"),
    user: $("current-user"),
    logout: $("logout-button"),
    supervisorLink: $("supervisor-link"),
    site: $("site-name"),
    clock: $("clock"),
  };

  // Contract A (docs/console.md): this page load's id, sent with the stream and the armed state.
  const consoleId = newConsoleId();

  const active = new Map(); // id -> {alert, stamp}
  const recent = new Map(); // id -> alert (resolved)
  const cards = new Map(); // id -> card element parts
  let stamp = 0; // increases with every alert update applied
  let source = null;
  let reconnectTimer = null;
  let healthTimer = null;
  let escalationTimer = null;
  let offlineTimer = null;
  let signedIn = false; // the queue is on screen (live, or read-only from the last known alerts)

  // ---------------------------------------------------------------- helpers

  function newConsoleId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    // crypto.randomUUID needs a secure context; a hub on the LAN over plain http is not one.
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  const nowS = () => Date.now() / 1000;

  // Unanswered first (emergency, routine, trouble), the longest-waiting on top; acknowledged
  // below them, in the same order.
  function compareAlerts(a, b) {
    const sa = a.state === "open" ? 0 : 1;
    const sb = b.state === "open" ? 0 : 1;
    if (sa !== sb) return sa - sb;
    const pa = PRIORITY_RANK[a.priority] ?? 3;
    const pb = PRIORITY_RANK[b.priority] ?? 3;
    if (pa !== pb) return pa - pb;
    if (a.opened_at !== b.opened_at) return a.opened_at - b.opened_at;
    return a.id - b.id;
  }

  // How long an unanswered alert has waited, as a step: 0 new, 1 waiting (60 s), 2 overdue
  // (180 s). Acknowledged and trouble alerts do not step up.
  function urgency(alert, now = nowS()) {
    if (alert.state !== "open" || alert.priority === "trouble") return 0;
    const waited = now - alert.opened_at;
    if (waited >= OVERDUE_S) return 2;
    if (waited >= WAITING_S) return 1;
    return 0;
  }

  // What kind of alarm an alert is: its tone, its icon and its look.
  function kindOf(alert) {
    if (alert.priority === "trouble") return "trouble";
    return (
      {
        smoke: "evacuation",
        fall: "fall",
        call_button: "call",
        bed_exit: "bed_exit",
        door_at_night: "door",
        vital_signs: "vitals",
      }[alert.rule] || "general"
    );
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

  function siteName(code) {
    const who = lib.me();
    const site = who && (who.sites || []).find((s) => s.id === code);
    return site ? site.name : "";
  }

  // ----------------------------------------------------------------- icons

  // One line-drawn icon per kind of alarm, always beside its word (never colour alone).
  const ICONS = {
    evacuation: ["M12 2c.5 4 5 6 5 11a5 5 0 0 1-10 0c0-2.5 1.5-4 2.5-6 .5 2 1.5 3 2.5 3.5C13 8 13 5 12 2z"],
    fall: ["M14 4.5a1.5 1.5 0 1 0 0 .01", "M12 8l-4 4 4 3-2 6", "M12 8l5 3", "M3 21h18"],
    call: ["M6 16v-5a6 6 0 0 1 12 0v5l2 2H4z", "M10 20a2 2 0 0 0 4 0"],
    bed_exit: ["M2 19V6", "M2 14h14v5", "M2 11h6", "M17 7l4 4-4 4", "M12 11h9"],
    door: ["M6 21V3h11v18", "M3 21h18", "M14 12h.01"],
    vitals: ["M3 12h4l2-5 3 10 2-5h7"],
    general: ["M12 3l10 18H2z", "M12 9v5", "M12 17v.01"],
    trouble: ["M14.5 6.5a4 4 0 0 0 4 5l-8 8.5-3-3 8.5-8a4 4 0 0 1-1.5-2.5z", "M17 3l4 4"],
  };

  function icon(kind) {
    const SVG = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("class", "icon");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.dataset.testid = "alert-icon";
    svg.dataset.kind = kind;
    for (const d of ICONS[kind] || ICONS.general) {
      const path = document.createElementNS(SVG, "path");
      path.setAttribute("d", d);
      svg.append(path);
    }
    return svg;
  }

  // ----------------------------------------------------------------- sound

  // Each kind of alarm has its own rhythm and pitch, so a nurse can tell them apart down a
  // corridor: notes are [start s, length s, Hz, Hz at the end (a sweep)], `cycle` is the length
  // of one round. The table is in docs/console.md.
  const PATTERNS = {
    // The evacuation signal's rhythm (three long beeps, a pause: "temporal three").
    evacuation: { wave: "square", cycle: 4, notes: [[0, 0.5, 950], [1, 0.5, 950], [2, 0.5, 950]] },
    fall: { wave: "sawtooth", cycle: 1.3, notes: [[0, 0.45, 1400, 500], [0.6, 0.45, 1400, 500]] },
    call: { wave: "square", cycle: 1.2, notes: [[0, 0.35, 988], [0.45, 0.55, 784]] },
    bed_exit: { wave: "square", cycle: 1.0, notes: [[0, 0.15, 523], [0.2, 0.15, 659], [0.4, 0.3, 784]] },
    door: { wave: "square", cycle: 1.0, notes: [0, 0.12, 0.24, 0.36, 0.48, 0.6].map((t) => [t, 0.07, 1568]) },
    vitals: { wave: "square", cycle: 1.6, notes: [[0, 0.12, 330], [0.18, 0.18, 262], [0.8, 0.12, 330], [0.98, 0.18, 262]] },
    general: { wave: "square", cycle: 1.1, notes: [[0, 0.16, 880], [0.2, 0.16, 1175], [0.4, 0.16, 880], [0.6, 0.3, 1175]] },
    trouble: { wave: "triangle", cycle: 1.0, gain: 0.5, notes: [[0, 0.25, 440]] },
    lost: { wave: "triangle", cycle: 1.5, notes: [[0, 0.45, 660, 620], [0.55, 0.8, 440, 330]] },
  };
  // A waiting alarm plays faster and louder (index: urgency).
  const TEMPO = [1, 1.3, 1.7];
  const GAIN = [0.3, 0.45, 0.6];

  let audio = null;
  let arming = false; // a tap asked the browser to start the sound; the answer is on its way
  let lastAlarmAt = 0; // when an alarm last played (epoch s), for the reminders
  let lastLostToneAt = 0;

  // A page that may play sound from the start (a kiosk with the autoplay flag) arms itself; any
  // other waits for a tap (unlockSound).
  function startAudio() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) {
      setSoundState("unsupported");
      return;
    }
    try {
      audio = new Ctx();
      audio.addEventListener("statechange", () => setSoundState(audio.state === "running" ? "on" : "off"));
      setSoundState(audio.state === "running" ? "on" : "off");
    } catch (_) {
      audio = null;
      setSoundState("off");
    }
  }

  // Must be called from a user gesture (click, key press).
  function unlockSound() {
    if (!audio) startAudio();
    if (!audio || audio.state === "running") return;
    arming = true;
    renderOverlay();
    // A browser that neither starts the sound nor says no: the overlay comes back.
    setTimeout(() => {
      if (!arming) return;
      arming = false;
      renderOverlay();
    }, 3000);
    audio.resume().then(
      () => {
        arming = false;
        setSoundState(audio.state === "running" ? "on" : "off");
      },
      () => {
        arming = false;
        setSoundState("off");
      },
    );
  }

  function setSoundState(state) {
    const was = status.soundState;
    status.soundState = state;
    el.sound.dataset.state = state;
    if (state === "on") el.sound.textContent = "Sound on — tap to test";
    else if (state === "unsupported") el.sound.textContent = "No sound on this device";
    else el.sound.textContent = "Sound off — tap to enable";
    renderOverlay();
    if (was === state) return;
    reportArmed();
    if (state === "on") soundPending();
  }

  // Schedules one pattern; false when the sound is not armed.
  function play(pattern, level, reason, repeats = 1) {
    if (!audio || audio.state !== "running") return false;
    const spec = PATTERNS[pattern] || PATTERNS.general;
    const tempo = TEMPO[level] || 1;
    const t0 = audio.currentTime + 0.05;
    const master = audio.createGain();
    master.gain.value = (GAIN[level] || GAIN[0]) * (spec.gain || 1);
    master.connect(audio.destination);
    const rounds = repeats + level;
    for (let r = 0; r < rounds; r += 1) {
      for (const [at, len, freq, freqEnd] of spec.notes) {
        const start = t0 + (r * spec.cycle + at) / tempo;
        const length = len / tempo;
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = spec.wave;
        osc.frequency.setValueAtTime(freq, start);
        if (freqEnd) osc.frequency.linearRampToValueAtTime(freqEnd, start + length);
        gain.gain.setValueAtTime(0.0001, start);
        gain.gain.exponentialRampToValueAtTime(1, start + 0.01);
        gain.gain.setValueAtTime(1, start + Math.max(0.02, length - 0.03));
        gain.gain.exponentialRampToValueAtTime(0.0001, start + length);
        osc.connect(gain).connect(master);
        osc.start(start);
        osc.stop(start + length + 0.02);
      }
    }
    setTimeout(() => master.disconnect(), ((rounds * spec.cycle) / tempo + 0.5) * 1000);
    soundLog.played.push({ pattern, level, reason });
    return true;
  }

  function soundAlarm(alert) {
    // The queue beside the views scrolls by itself: a new alarm brings its top, the
    // longest-waiting unanswered alarm, back into view.
    el.queueCol.scrollTop = 0;
    if (play(kindOf(alert), urgency(alert), "new", 2)) {
      status.alarmsSounded += 1;
      lastAlarmAt = nowS();
    } else {
      status.alarmsMissed += 1;
    }
  }

  function soundLost() {
    if (play("lost", 0, "lost")) lastLostToneAt = nowS();
  }

  // The first tap plays what was missed at once: the most urgent unanswered alarm, and the
  // lost connection.
  function soundPending() {
    const top = topUnanswered();
    if (top && play(kindOf(top), urgency(top), "armed", 2)) lastAlarmAt = nowS();
    if (status.connection === "lost") soundLost();
  }

  // An unanswered alert keeps reminding until staff acknowledge it, unless its policy lets the
  // family's "I'm handling it" quiet the console (summary.console_quiet).
  const quiet = new Set();
  function topUnanswered() {
    return sortedAlerts().find((alert) => alert.state === "open" && !quiet.has(alert.id)) || null;
  }

  function remind(now) {
    const top = topUnanswered();
    if (top) {
      const level = urgency(top, now);
      const every = top.priority === "trouble" ? TROUBLE_REMINDER_S : REMINDER_S[level];
      if (now - lastAlarmAt >= every && play(kindOf(top), level, "reminder")) {
        status.remindersSounded += 1;
        lastAlarmAt = now;
      }
    }
    if (status.connection === "lost" && now - lastLostToneAt >= LOST_TONE_S) soundLost();
  }

  // ------------------------------------------------- the overlay that arms the sound

  // Until the page can play sound, nothing else on it can be used: a full-screen overlay asks for
  // the tap, and lights up (with the count) when alarms are waiting.
  function renderOverlay() {
    const show = signedIn && status.soundState === "off" && !arming;
    const wasShown = !el.overlay.hidden;
    el.overlay.hidden = !show;
    el.head.inert = show;
    el.main.inert = show;
    if (!show) return;
    const waiting = sortedAlerts().filter((a) => a.state === "open");
    const alarms = waiting.filter((a) => a.priority !== "trouble");
    el.overlay.dataset.alarm = alarms.length ? "alarm" : waiting.length ? "trouble" : "none";
    const lost = status.connection === "lost" ? `${status.readOnly ? OFFLINE_TEXT : LOST_TEXT} ` : "";
    if (waiting.length) {
      const what = waiting
        .slice(0, 3)
        .map((a) => `${ruleLabel(a.rule)} — ${alertPlace(a).headline}`)
        .join("; ");
      const more = waiting.length > 3 ? ` and ${waiting.length - 3} more` : "";
      const n = waiting.length === 1 ? "1 alarm is waiting" : `${waiting.length} alarms are waiting`;
      el.armWaiting.textContent = `${lost}${n}: ${what}${more}. Tap to hear it and see the queue.`;
    } else {
      el.armWaiting.textContent = `${lost}The alarm cannot sound until someone taps this screen. No alarms are waiting.`;
    }
    if (!wasShown || !el.overlay.contains(document.activeElement)) el.armButton.focus();
  }

  // Contract A: the hub counts this console as watching while its stream is open and it is armed.
  async function reportArmed() {
    if (!source || !lib.me()) return; // the stream opened later says it (armed=)
    try {
      await api("POST", "/api/consoles/armed", { console: consoleId, armed: status.soundState === "on" });
    } catch (err) {
      if (err.status === 404) connect(); // no stream of ours known there: open it again, saying armed=
    }
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

  function sortedAlerts() {
    return [...active.values()].map(({ alert }) => alert).sort(compareAlerts);
  }

  function afterChange() {
    orderQueue();
    renderSummary();
    renderUrgency();
    renderSmokeBanner();
    renderOverlay();
    rememberAlerts();
  }

  async function loadSnapshot() {
    const startedAt = stamp;
    const [activeData, resolvedData] = await Promise.all([
      api("GET", "/api/alerts?state=active&limit=500"),
      api("GET", "/api/alerts?state=resolved&limit=20").catch(() => ({ alerts: [] })),
    ]);
    const seen = new Set();
    const alarms = [];
    for (const alert of activeData.alerts) {
      seen.add(alert.id);
      // Open alerts new to this console sound once: they may have arrived during a blip.
      if (applyAlert(alert)) alarms.push(alert);
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
    if (alarms.length) soundAlarm(alarms.sort(compareAlerts)[0]);
  }

  // Contract C: the last known alerts, for a console started while the hub cannot be reached.
  function rememberAlerts() {
    if (status.readOnly || !lib.me()) return;
    lib.keep(LAST_ALERTS_KEY, { at: nowS(), site: el.site.textContent, alerts: sortedAlerts() });
  }

  function lastAlerts() {
    const record = lib.kept(LAST_ALERTS_KEY);
    return record && Array.isArray(record.alerts) ? record : null;
  }

  function forgetAlerts() {
    lib.forgetKept(LAST_ALERTS_KEY);
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
      parts = { card, body, actions, escalation, error, formSlot, form: null, actionsKey: "", level: -1 };
      cards.set(alert.id, parts);
      el.queue.append(card);
    }
    if (!status.readOnly) refreshEscalation(alert.id);
    const { card } = parts;
    card.dataset.state = alert.state;
    card.dataset.priority = alert.priority;
    card.dataset.rule = alert.rule;
    card.dataset.kind = kindOf(alert);
    parts.body.replaceChildren(...cardBody(alert));
    parts.placeKey = placeKey(alert);
    parts.level = -1;
    renderCardUrgency(alert, parts);
    const key = `${alert.state}/${status.readOnly}`;
    if (parts.actionsKey !== key) {
      parts.actions.replaceChildren(...cardActions(alert, parts));
      parts.actionsKey = key;
    }
  }

  // The card's step (new, waiting, overdue): its class, its badge and its name for screen readers.
  function renderCardUrgency(alert, parts, now = nowS()) {
    const level = urgency(alert, now);
    const badge = parts.card.querySelector('[data-testid="alert-state"]');
    const waited = Math.floor(Math.max(0, now - alert.opened_at) / 60);
    let label = "ACKNOWLEDGED";
    if (alert.state === "open") label = ["NEW", `Waiting ${waited} min`, `OVERDUE ${waited} min`][level];
    if (badge && badge.textContent !== label) badge.textContent = label;
    parts.card.dataset.urgency = ["new", "waiting", "overdue"][level];
    const changed = level !== parts.level;
    parts.level = level;
    if (changed) {
      const state = alert.state === "open" ? label : "Acknowledged";
      parts.card.setAttribute("aria-label", `${state}: ${ruleLabel(alert.rule)}, ${alertPlace(alert).headline}`);
    }
    return changed;
  }

  // Where an alert happened, in the hub's words (hub/registry/labels.py): every alert the hub sends
  // (list, stream, actions) carries its `place`: headline, room, zone, text and, for a gateway,
  // the beds it leaves unwatched.
  function alertPlace(alert) {
    return alert.place || { headline: alert.bed || alert.room_name || "Unknown place", room: "", zone: alert.zone_name || "", text: "", unwatched: [] };
  }

  function placeKey(alert) {
    return JSON.stringify(alertPlace(alert));
  }

  // A person by name: the hub's name for them if it sends one (`acknowledged_by_name`,
  // `resolved_by_name`), this console's user by their own name, else the user name.
  function personName(user, name) {
    if (name) return name;
    const who = lib.me();
    if (who && who.user === user && who.name) return who.name;
    return user || "Someone";
  }

  const VIA_WORDS = {
    console: "on a console",
    push: "on their phone",
    apprise: "by message",
    family_app: "in the family app",
    api: "through a connected system",
  };

  // A text that names a time as "… ago" and is said again every second (tick).
  function agoText(testid, cls, prefix, since) {
    return make("span", { class: cls, testid, "data-since": since, "data-prefix": prefix }, `${prefix}${ago(since)}`);
  }

  function cardBody(alert) {
    const place = alertPlace(alert);
    const head = make("div", { class: "card-head" });
    const what = make("span", { class: "rule", testid: "alert-rule" }, ruleLabel(alert.rule));
    head.append(
      make("span", { class: "badge", testid: "alert-state" }, alert.state === "open" ? "NEW" : "ACKNOWLEDGED"),
      icon(kindOf(alert)),
      what,
      make("span", { class: "bed", testid: "alert-bed" }, place.headline),
    );
    if ((alert.count || 1) > 1) {
      const latest = alert.last_triggered_at ? ` · latest at ${clockTime(alert.last_triggered_at)}` : "";
      head.append(make("span", { class: "repeat", testid: "alert-count" }, `Triggered ${alert.count} times${latest}`));
    }

    const where = make("div", { class: "where" });
    if (place.room) where.append(make("span", { class: "room", testid: "alert-room" }, place.room));
    if (place.zone) where.append(make("span", { class: "zone", testid: "alert-zone" }, place.zone));
    // The device in words ("fall radar in room 104"), never its id.
    const device = alert.device_name || place.device_name;
    if (device) where.append(make("span", { class: "device", testid: "alert-device" }, `from the ${device}`));

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
      who.append(make("span", { class: "resident-none" }, "In the room, not at one bed"));
    }

    const when = make("div", { class: "when" });
    when.append(
      make("span", { class: "opened", testid: "alert-opened" }, `Opened ${stampText(alert.opened_at)}`),
      agoText("alert-ago", "ago", "", alert.opened_at),
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
    if (alert.state === "acknowledged" && alert.acknowledged_at) {
      // Who is on the way, and for how long.
      const via = VIA_WORDS[alert.acknowledged_via];
      const acked = agoText("alert-acked", "note note-acked", `${personName(alert.acknowledged_by, alert.acknowledged_by_name)} acknowledged `, alert.acknowledged_at);
      if (via) acked.dataset.suffix = ` ${via}`;
      acked.textContent += acked.dataset.suffix || "";
      notes.append(acked);
    }
    const nodes = [head, where, who, when];
    if (notes.childElementCount) nodes.push(notes);
    return nodes;
  }

  function cardActions(alert, parts) {
    if (status.readOnly) {
      // The last known alerts, shown while the hub cannot be reached: nothing can be done here.
      const note = make("span", { class: "card-offline", testid: "alert-offline" }, NOT_OFFLINE);
      const buttons = [];
      if (alert.state === "open") buttons.push(make("button", { type: "button", class: "btn btn-ack", disabled: true }, "Acknowledge"));
      buttons.push(make("button", { type: "button", class: "btn btn-resolve", disabled: true }, "Resolve…"));
      return [...buttons, note];
    }
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
  const CHANNEL_WORDS = { console: "console", push: "phone", apprise: "message", family_app: "family app" };
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
    // The hub says whom and how in words ("Okafor family (family app)").
    const reachedText = reached
      .map((r) => r.text || (CHANNEL_WORDS[r.channel] ? `${r.name} (${CHANNEL_WORDS[r.channel]})` : r.name))
      .join(", ");
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

  // "NOBODY REACHED" across the top of every console of the site while such an alert is open:
  // the first in the queue's order and how many more, so that the banner stays one or two lines
  // and the queue under it in view.
  function renderNobodyBanner() {
    const texts = [];
    for (const alert of sortedAlerts()) {
      // The escalation's answer says nobody was reached; the alert may still be the copy from
      // before that (a snapshot that crossed the stream's update): its state is what counts.
      if (!nobodyReached.has(alert.id) || alert.state !== "open") continue;
      const missed = nobodyReached.get(alert.id);
      const where = [alert.resident_name, alert.bed || alert.room_name, alert.zone_name].filter(Boolean).join(" · ");
      texts.push(`${ruleLabel(alert.rule)}${where ? ` — ${where}` : ""}${missed ? ` (${missed.reason})` : ""}`);
    }
    const banner = el.nobodyBanner;
    banner.hidden = texts.length === 0;
    const more = texts.length > 1 ? ` and ${texts.length - 1} more` : "";
    banner.replaceChildren(
      make("strong", {}, "NOBODY REACHED"),
      make("span", {}, ` ${texts[0] || ""}${more}. Go now, or call for help.`),
    );
    for (const [id, parts] of cards) {
      const entry = active.get(id);
      const open = entry && entry.alert.state === "open";
      parts.card.dataset.nobody = open && nobodyReached.has(id) ? "reached-nobody" : "";
    }
  }

  // Smoke is an evacuation: a banner across the top of every view while a smoke alarm of a site
  // is unanswered, naming the site and the place.
  function renderSmokeBanner() {
    const smoke = sortedAlerts().filter((a) => a.state === "open" && a.rule === "smoke");
    el.smokeBanner.hidden = smoke.length === 0;
    if (!smoke.length) {
      document.body.dataset.evacuation = "";
      return;
    }
    const places = smoke.map((a) => {
      const place = alertPlace(a);
      const site = siteName(a.site);
      return [place.text || place.headline, site].filter(Boolean).join(", ");
    });
    el.smokeBanner.replaceChildren(
      icon("evacuation"),
      make("strong", {}, "FIRE ALARM — EVACUATION"),
      make("span", { testid: "smoke-banner-where" }, `Smoke alarm: ${places.join("; ")}. Follow the fire plan.`),
    );
    document.body.dataset.evacuation = "on";
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
    // Move only what is out of place, so a focused control inside a card keeps its focus.
    let cursor = el.queue.firstElementChild;
    for (const alert of sortedAlerts()) {
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
    if (!who) return; // read-only: the site's name as last known
    const sites = who.sites || [];
    el.site.textContent = sites.map((site) => site.name).join(" · ");
    el.site.hidden = sites.length === 0;
  }

  // The page's alarm state, from the most urgent unanswered alert: the header and the screen's
  // edge flash (steady under prefers-reduced-motion) until it is acknowledged, and step up as it
  // waits. Trouble alerts do not flash.
  function renderUrgency(now = nowS()) {
    let stepped = null;
    for (const [id, parts] of cards) {
      const entry = active.get(id);
      const before = parts.level;
      if (entry && renderCardUrgency(entry.alert, parts, now) && before >= 0 && parts.level > before) stepped = entry.alert;
    }
    const alarms = sortedAlerts().filter((a) => a.state === "open" && a.priority !== "trouble");
    const troubles = [...active.values()].some(({ alert }) => alert.state === "open" && alert.priority === "trouble");
    const top = alarms[0];
    const level = top ? urgency(top, now) : 0;
    document.body.dataset.alarm = top ? ["new", "waiting", "overdue"][level] : troubles ? "trouble" : "none";
    el.alarmState.hidden = !top;
    if (top) {
      const n = alarms.length === 1 ? "1 ALARM WAITING" : `${alarms.length} ALARMS WAITING`;
      const waited = Math.floor(Math.max(0, now - top.opened_at) / 60);
      el.alarmState.textContent = level === 2 ? `${n} · OVERDUE ${waited} min` : level === 1 ? `${n} · waiting ${waited} min` : n;
    }
    // An alarm that has just stepped up sounds at once, at its new step.
    if (stepped && !quiet.has(stepped.id) && play(kindOf(stepped), urgency(stepped, now), "step")) lastAlarmAt = now;
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
        const by = [a.resolved_by && `by ${personName(a.resolved_by, a.resolved_by_name)}`, a.resolved_at && `at ${clockTime(a.resolved_at)}`];
        li.append(
          make("span", { class: "recent-what" }, `${ruleLabel(a.rule)} · ${alertPlace(a).headline}${who}`),
          make("span", { class: "recent-outcome", testid: "resolved-outcome" }, outcomeLabel(a.outcome)),
          make("span", { class: "recent-by" }, by.filter(Boolean).join(" ")),
        );
        if (a.note) li.append(make("span", { class: "recent-note" }, a.note));
        return li;
      }),
    );
    el.recent.hidden = items.length === 0;
  }

  function tick() {
    const now = nowS();
    el.clock.textContent = lib.shortTime(now);
    for (const node of el.queue.querySelectorAll("[data-since]")) {
      node.textContent = `${node.dataset.prefix || ""}${ago(Number(node.dataset.since))}${node.dataset.suffix || ""}`;
    }
    if (!signedIn) return;
    renderUrgency(now);
    remind(now);
  }

  // ------------------------------------------------------------ connection

  function setConnection(state) {
    const was = status.connection;
    status.connection = state;
    el.conn.dataset.state = state;
    el.conn.textContent = { live: "Live", connecting: "Connecting…", lost: "Reconnecting…", offline: "Not connected" }[state];
    el.connBanner.hidden = state !== "lost";
    el.connBanner.textContent = status.readOnly ? OFFLINE_TEXT : LOST_TEXT;
    renderOverlay();
    if (state === "lost" && was !== "lost") soundLost(); // once armed, if it is not yet
  }

  function connect() {
    disconnect();
    // A console that has lost the hub stays "lost" until the stream says hello again.
    if (status.connection !== "lost") setConnection("connecting");
    const armed = status.soundState === "on" ? 1 : 0;
    const es = new EventSource(`/api/stream?console=${encodeURIComponent(consoleId)}&armed=${armed}`);
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
      if (sound) soundAlarm(alert);
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

  // The stream's own error is the fast sign of a lost hub; this catches a link that dies
  // without closing (a dropped Wi-Fi, a hung hub).
  async function pollHealth() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), HEALTH_TIMEOUT_S * 1000);
    try {
      const response = await fetch("/api/health", { cache: "no-store", signal: abort.signal });
      const health = await response.json();
      el.brokerBanner.hidden = health.broker_connected !== false;
    } catch (_) {
      if (status.connection === "live" || status.connection === "connecting") {
        setConnection("lost");
        connect(); // a stream that looks open may be dead: open it again
      }
    } finally {
      clearTimeout(timer);
    }
  }

  // ------------------------------------------------------------ login flow

  const login = lib.loginForm(startConsole);
  // The sign-in tap is the user gesture that lets the alarm play.
  $("login-form").addEventListener("submit", unlockSound);
  lib.onSessionEnded(showLogin);

  function clearQueue() {
    active.clear();
    recent.clear();
    quiet.clear();
    for (const id of [...cards.keys()]) removeCard(id);
    renderRecent();
  }

  function showLogin(message) {
    disconnect();
    clearInterval(healthTimer);
    clearInterval(escalationTimer);
    clearTimeout(offlineTimer);
    signedIn = false;
    status.readOnly = false;
    clearQueue();
    forgetAlerts();
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
    afterChange();
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
    clearTimeout(offlineTimer);
    if (status.readOnly) {
      // Back from a start without the hub: the live alerts replace the last known ones.
      status.readOnly = false;
      clearQueue();
      el.console.dataset.readonly = "";
    }
    signedIn = true;
    el.loading.hidden = true;
    el.login.hidden = true;
    el.console.hidden = false;
    el.user.textContent = lib.userLabel(who);
    el.user.hidden = false;
    el.logout.hidden = false;
    el.supervisorLink.hidden = !who.permissions.includes("figures.read");
    el.sound.hidden = false;
    renderSummary();
    renderOverlay();
    await lib.loadOutcomes().catch(() => undefined); // loaded again when a resolve form opens
    connect();
    pollHealth();
    clearInterval(healthTimer);
    healthTimer = setInterval(pollHealth, HEALTH_POLL_S * 1000);
    clearInterval(escalationTimer);
    escalationTimer = setInterval(refreshAllEscalations, ESCALATION_POLL_S * 1000);
    announce("start", who);
  }

  // Contract C: started while the hub cannot be reached (the page came from the service
  // worker's copy): the last known alerts, read-only, under the banner; retried until the hub
  // answers.
  function showOffline() {
    const record = lastAlerts();
    if (!record) {
      el.loading.textContent = `${OFFLINE_TEXT} Trying again…`;
      el.loading.hidden = false;
      offlineTimer = setTimeout(retryOffline, OFFLINE_RETRY_S * 1000);
      return;
    }
    status.readOnly = true;
    signedIn = true;
    el.console.dataset.readonly = "true";
    el.loading.hidden = true;
    el.login.hidden = true;
    el.console.hidden = false;
    el.site.textContent = record.site || "";
    el.site.hidden = !record.site;
    clearQueue();
    for (const alert of record.alerts) applyAlert(alert);
    setConnection("lost");
    afterChange();
    el.summary.textContent = `As last known at ${stampText(record.at)} — read-only`;
    offlineTimer = setTimeout(retryOffline, OFFLINE_RETRY_S * 1000);
  }

  async function retryOffline() {
    let who;
    try {
      who = await lib.whoAmI();
    } catch (err) {
      if (err.status === 0) offlineTimer = setTimeout(retryOffline, OFFLINE_RETRY_S * 1000);
      else if (err.status === 401) showLogin("");
      else offlineTimer = setTimeout(retryOffline, OFFLINE_RETRY_S * 1000);
      return;
    }
    el.loading.textContent = "Connecting to the hub…";
    setConnection("connecting");
    await startConsole(who);
  }

  el.logout.addEventListener("click", async () => {
    await lib.signOut();
    showLogin("");
  });

  el.sound.addEventListener("click", () => {
    if (status.soundState === "on") play(topUnanswered() ? kindOf(topUnanswered()) : "general", 0, "test");
    else unlockSound();
  });

  // Any tap, anywhere, arms the sound if it is still off (after a reload); so do Enter and Space.
  document.addEventListener(
    "pointerdown",
    () => {
      if (signedIn && status.soundState === "off") unlockSound();
    },
    { capture: true },
  );
  document.addEventListener(
    "keydown",
    (event) => {
      if (!signedIn || status.soundState !== "off" || el.overlay.hidden) return;
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        unlockSound();
      }
    },
    { capture: true },
  );
  el.armButton.addEventListener("click", unlockSound);

  window.addEventListener("pagehide", disconnect);

  // A new board may name places better (a bed's room, a gateway's beds): say them again.
  document.addEventListener("carewatch:board", () => {
    for (const [id, parts] of cards) {
      const entry = active.get(id);
      if (!entry || parts.placeKey === placeKey(entry.alert)) continue;
      parts.body.replaceChildren(...cardBody(entry.alert));
      parts.placeKey = placeKey(entry.alert);
      parts.level = -1;
      renderCardUrgency(entry.alert, parts);
    }
  });

  // The header's height, for the queue that stays in view under it (console.css).
  new ResizeObserver(() => {
    document.documentElement.style.setProperty("--head-h", `${el.head.offsetHeight}px`);
  }).observe(el.head);

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/staff-sw.js").catch(() => undefined); // an offline start (Contract C)
  }

  async function boot() {
    lastAlarmAt = nowS();
    startAudio();
    tick();
    setInterval(tick, 1000);
    try {
      await startConsole(await lib.whoAmI());
    } catch (err) {
      if (err.status === 0) showOffline();
      else showLogin(err.status === 401 ? "" : err.message);
    }
  }

  boot();
})();
