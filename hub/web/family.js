// carewatch app for phones, by role. Family: how a relative is now, their recent alerts and what
// the care service did about them, whom to call, and push alerts. Staff (and charge nurses,
// supervisors): the active alerts of the zones they cover, with "I'm going" and "I can't", and
// the same push alerts on their own phone. When the hub cannot be reached the app says so within
// seconds, and opened then (its shell kept by /sw.js) it shows what it last showed, kept in this
// browser's storage until sign-out, with buttons that say they cannot work now. Plain JS, no
// framework. All data is inserted with textContent, never as HTML.
"use strict";

(() => {
  const POLL_S = 15;
  const HEALTH_EVERY_MS = 5000; // how soon a lost connection is noticed, while the app is on screen
  const SW_SCOPE = "/family";
  const STORAGE_KEY = "carewatch.family.lastSeen";
  const OFFLINE_TEXT = "No contact with the care service — new alerts are not reaching this screen.";
  const NOT_NOW = {
    family: "Not available while the care service cannot be reached. If it is urgent, call them.",
    staff: "Not available while the hub is unreachable. Call the nurses' station.",
  };
  const RULES = {
    fall: "Fall",
    call_button: "Call button pressed",
    smoke: "Smoke alarm",
    bed_exit: "Not back in bed",
    door_at_night: "Door opened at night",
    inactivity: "No movement for a long time",
    not_up: "Not up yet",
    prolonged_stay: "A long time in the bathroom",
    vital_signs: "Heart or breathing rate unusual",
    device_offline: "A sensor is not responding",
    gateway_offline: "Connection lost",
    low_battery: "A battery is low",
    tamper: "A sensor was tampered with",
  };
  const STATE_WORDS = {
    acknowledged: "Being dealt with",
    open: "Not answered yet",
    resolved: "Closed",
  };
  const RELATIONS = { family: "Family", family_doctor: "Family doctor", other: "" };
  const ACTIVITY = { in_bed: "in bed", up: "up", away: "away", unknown: "no reading yet" };
  const CHANNEL_WORDS = { console: "console", push: "phone", apprise: "message" };

  // Exposed for tests and for anyone helping a relative set up their phone.
  const status = { refreshes: 0, push: "off", serviceWorker: "none", lastError: null, role: null };
  window.carewatchFamily = status;

  const lib = window.carewatch;
  const { make, api } = lib;
  const $ = lib.byTestId;
  const el = {
    loading: $("loading"),
    login: $("login-panel"),
    notFamily: $("not-family"),
    app: $("family-app"),
    staff: $("staff-app"),
    staffAlerts: $("staff-alerts"),
    staffNone: $("staff-none"),
    staffUpdated: $("staff-updated"),
    pushPanel: $("push-panel"),
    residents: $("residents"),
    none: $("no-residents"),
    user: $("family-user"),
    logout: $("logout-button"),
    pushEnable: $("push-enable"),
    pushStatus: $("push-status"),
    updated: $("last-updated"),
    offline: $("offline-banner"),
  };

  let pollTimer = null;
  let reachable = true; // the hub answered the last call
  let shownAt = null; // when what the page shows came from the hub (epoch s)
  let lastShown = null; // {residents} or {alerts, records}: what the page shows, to draw it again

  // ---------------------------------------------------------------- helpers

  const weekdayDate = (epochS) =>
    new Date(epochS * 1000).toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" });

  // A room as hub/registry/labels.py names it: "Room 101" when its name is a number, else its own name.
  function roomWords(name) {
    if (!name) return null;
    return /^[0-9]/.test(name) ? `Room ${name}` : name;
  }

  function when(epochS) {
    return lib.dayPrefix(epochS, weekdayDate) + lib.shortTime(epochS);
  }

  function howLong(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return "less than a minute";
    const m = Math.floor(s / 60);
    if (m < 60) return m === 1 ? "1 minute" : `${m} minutes`;
    const h = Math.floor(m / 60);
    if (h < 48) return h === 1 ? "1 hour" : `${h} hours`;
    return `${Math.floor(h / 24)} days`;
  }

  function show(section) {
    el.loading.hidden = true;
    for (const name of ["login", "notFamily", "app", "staff"]) el[name].hidden = name !== section;
    el.pushPanel.hidden = section !== "app" && section !== "staff";
    el.user.hidden = el.logout.hidden = section === "login";
  }

  // Who the app is for: a family member, or staff who answer alerts (staff, charge nurses,
  // supervisors, admins: every role that may act on alerts). Installers are neither.
  function roleOf(who) {
    if (who.role === "family") return "family";
    return (who.permissions || []).includes("alerts.act") ? "staff" : null;
  }

  // ---------------------------------------------------------------- sign in

  function start() {
    registerServiceWorker();
    setInterval(checkHub, HEALTH_EVERY_MS);
    return signedInAlready();
  }

  async function signedInAlready() {
    try {
      enter(await lib.whoAmI());
    } catch (err) {
      if (err.status === 0) {
        startedOffline(); // no answer at all: started from the cache
        return;
      }
      if (err.status === 401) forget(); // a session that ended while the app was closed
      show("login");
    }
  }

  // ---------------------------------------------------------------- without the hub

  function save(shown) {
    const who = lib.me();
    if (!who) return;
    lastShown = shown;
    shownAt = Date.now() / 1000;
    lib.keep(STORAGE_KEY, { at: shownAt, user: who.user, name: who.name, role: status.role, ...shown });
  }

  function saved() {
    const kept = lib.kept(STORAGE_KEY);
    return kept && kept.user && kept.role ? kept : null;
  }

  function forget() {
    lastShown = shownAt = null;
    lib.forgetKept(STORAGE_KEY);
  }

  // Opened while the hub cannot be reached: what this phone last showed, if anything.
  function startedOffline() {
    const kept = saved();
    shownAt = kept ? kept.at : null;
    setReachable(false);
    if (!kept) {
      show("login");
      return;
    }
    el.user.textContent = kept.name || kept.user;
    status.role = kept.role;
    lastShown = kept.role === "staff" ? { alerts: kept.alerts, records: kept.records } : { residents: kept.residents };
    show(kept.role === "family" ? "app" : "staff");
    el.pushPanel.hidden = true;
    drawAgain();
  }

  function setReachable(now) {
    reachable = now;
    el.offline.hidden = now;
    const since = shownAt ? ` Shown: what was known at ${when(shownAt)}.` : "";
    el.offline.textContent = OFFLINE_TEXT + since;
    // turning alerts on needs the hub: the panel comes back with it
    el.pushPanel.hidden = !now || (el.app.hidden && el.staff.hidden);
  }

  // The hub there or not, every few seconds while the app is on screen: the banner shows soon
  // after the connection is lost, and the app loads again as soon as the hub answers.
  async function checkHub() {
    if (document.visibilityState !== "visible") return;
    let answered = false;
    try {
      answered = (await fetch("/api/health", { cache: "no-store" })).ok;
    } catch (_) {
      answered = false;
    }
    if (answered === reachable) return;
    if (!answered) {
      lost();
      return;
    }
    setReachable(true);
    if (lib.me()) refresh();
    else signedInAlready(); // opened offline: signed in still?
  }

  function lost() {
    if (!reachable) return;
    setReachable(false);
    drawAgain();
  }

  // What the page showed, drawn again: its buttons say whether they can work now.
  function drawAgain() {
    if (!lastShown) return;
    if (status.role === "staff" && lastShown.alerts) renderStaff(lastShown.alerts, lastShown.records);
    else if (status.role === "family" && lastShown.residents) render(lastShown.residents);
  }

  function notNow(testid) {
    return make("p", { class: "offline-note", testid }, NOT_NOW[status.role] || NOT_NOW.family);
  }

  function enter(who) {
    el.user.textContent = who.name;
    status.role = roleOf(who);
    if (status.role === null) {
      show("notFamily");
      return;
    }
    show(status.role === "family" ? "app" : "staff");
    describePush();
    refresh();
  }

  const login = lib.loginForm(enter, { unreachable: "Cannot reach the care service. Check your connection." });
  lib.onSessionEnded((message) => {
    clearTimeout(pollTimer);
    forget(); // kept only while signed in
    login.reset(message);
    show("login");
  });

  el.logout.addEventListener("click", async () => {
    await lib.signOut();
    clearTimeout(pollTimer);
    forget();
    el.residents.replaceChildren();
    el.staffAlerts.replaceChildren();
    status.role = null;
    login.reset("");
    show("login");
  });

  // ---------------------------------------------------------------- data

  // One load at a time: a load asked for while another is on its way (a push, then the answer
  // to its button) runs after it, so an older answer never lands on top of a newer one.
  let loading = null;
  let loadAgain = false;
  async function refresh() {
    if (loading) {
      loadAgain = true;
      return loading;
    }
    loading = (async () => {
      do {
        loadAgain = false;
        await refreshOnce();
      } while (loadAgain);
    })();
    try {
      await loading;
    } finally {
      loading = null;
    }
  }

  async function refreshOnce() {
    clearTimeout(pollTimer);
    if (!lib.me() || status.role === null) return;
    const loaded = status.role === "staff" ? await loadStaff() : await loadFamily();
    if (loaded) {
      status.refreshes += 1;
      const stamp = `Updated ${when(Date.now() / 1000)}`;
      el.updated.textContent = el.staffUpdated.textContent = stamp;
    }
    pollTimer = setTimeout(refresh, POLL_S * 1000);
  }

  // True when the hub answered (and the page shows its answer).
  async function loadFamily() {
    let residents;
    try {
      residents = (await api("GET", "/api/family")).residents;
    } catch (err) {
      if (err.status === 0) lost(); // else 401: the sign-in form is back
      return false;
    }
    if (!reachable) setReachable(true);
    save({ residents });
    render(residents);
    return true;
  }

  function render(residents) {
    el.none.hidden = residents.length > 0;
    el.residents.replaceChildren(...residents.map(residentCard));
    focusHashAlert();
  }

  function residentCard(person) {
    const card = make("article", {
      class: "card",
      testid: "resident-card",
      "data-code": person.code,
      "data-state": person.state.code,
    });
    const head = make("header", { class: "card-head" });
    head.append(make("h2", { testid: "resident-name" }, person.name));
    if (person.place) {
      const place = person.place.text || [roomWords(person.place.room_name), person.place.site_name].filter(Boolean).join(", ");
      head.append(make("p", { class: "place", testid: "resident-place" }, place));
    }
    card.append(head, stateBlock(person.state));
    if (person.active_alerts.length) card.append(activeAlerts(person.active_alerts, person.care_service));
    card.append(recentAlerts(person.recent_alerts), contacts(person.care_service, person.contacts));
    return card;
  }

  function stateBlock(state) {
    const block = make("div", { class: `state state-${state.code}`, testid: "resident-state-block" });
    block.append(make("p", { class: "state-label", testid: "resident-state" }, state.label));
    if (state.since) {
      const ago = howLong(Date.now() / 1000 - state.since);
      block.append(
        make("p", { class: "state-since", testid: "resident-since" }, `since ${when(state.since)} (${ago})`),
      );
    }
    if (state.trouble.length) {
      const list = make("ul", { class: "trouble", testid: "resident-trouble" });
      for (const line of state.trouble) list.append(make("li", {}, line));
      block.append(list);
      block.append(
        make("p", { class: "state-since" }, `Last reading: ${ACTIVITY[state.activity] || state.activity}. The care service has been told.`),
      );
    }
    return block;
  }

  function activeAlerts(alerts, careService) {
    const box = make("section", { class: "active", testid: "active-alerts" });
    box.append(make("h3", {}, "Needs attention now"));
    const myName = (lib.me() || {}).name;
    for (const alert of alerts) {
      const item = make("div", {
        class: `alert-now priority-${alert.priority}`,
        testid: "active-alert",
        "data-alert-id": alert.id,
        "data-state": alert.state,
        id: `alert-${alert.id}`,
      });
      item.append(
        make("p", { class: "alert-title", testid: "active-alert-rule" }, RULES[alert.rule] || alert.rule),
        make("p", { class: "alert-meta", testid: "active-alert-status" }, alertStatus(alert)),
        staffResponse(alert, careService),
      );
      const family = familyAnswers(alert);
      if (family) item.append(make("p", { class: "alert-meta", testid: "family-answers" }, family));
      const buttons = make("div", { class: "buttons" });
      const seen = make("button", { type: "button", class: "btn primary", testid: "seen-button" }, "I've seen it");
      seen.disabled = !reachable || (alert.seen_by || []).includes(myName);
      seen.addEventListener("click", () => act(alert, "seen", item));
      buttons.append(seen);
      if (alert.can_handle && !alert.handling) {
        const handle = make("button", { type: "button", class: "btn", testid: "handling-button" }, "I'm handling it");
        handle.disabled = !reachable;
        handle.addEventListener("click", () => act(alert, "handling", item));
        buttons.append(handle);
      }
      const send = make("button", { type: "button", class: "btn", testid: "send-someone-button" }, "Send someone");
      send.disabled = !reachable || alert.help_requested_by.includes(myName);
      send.addEventListener("click", () => act(alert, "send-someone", item));
      buttons.append(send);
      if (!reachable) buttons.append(notNow("alert-offline"));
      item.append(buttons, make("p", { class: "error", testid: "alert-error", role: "alert", hidden: true }));
      box.append(item);
    }
    return box;
  }

  // What the record shows the care service did: who acknowledged, who was alerted and how, or
  // that nobody could be reached (then the number to call now). Never more than the record.
  function responseText(response, active) {
    if (!response) return null;
    const at = response.at ? ` at ${when(response.at)}` : "";
    switch (response.kind) {
      case "acknowledged":
        return `Acknowledged by ${response.name}${at}`;
      case "alerted":
        return `${response.name} was alerted${at}${response.channel ? ` (${response.channel})` : ""}`;
      case "nobody_reached":
        if (!active) return `We could not reach anyone${at}`;
        return response.call
          ? `We could not reach anyone. Call the care service now: ${response.call}`
          : "We could not reach anyone. Call the care service now.";
      case "waiting":
        return active ? "No answer from the care service yet." : null;
      default:
        return null;
    }
  }

  function telHref(number) {
    return `tel:${String(number).replace(/[^0-9+]/g, "")}`;
  }

  function staffResponse(alert, careService) {
    const response = alert.staff_response || { kind: "waiting" };
    const box = make("div", {
      class: `staff-response response-${response.kind}`,
      testid: "staff-response",
      "data-kind": response.kind,
      role: response.kind === "nobody_reached" ? "alert" : null,
    });
    box.append(make("p", { testid: "staff-response-text" }, responseText(response, true)));
    const call = response.kind === "nobody_reached" ? response.call || (careService && careService.phone) : null;
    if (call) {
      box.append(
        make("a", { class: "btn call urgent", href: telHref(call), testid: "staff-response-call" }, `Call ${call}`),
      );
    }
    return box;
  }

  function familyAnswers(alert) {
    const parts = [];
    if ((alert.seen_by || []).length) parts.push(`Seen by ${alert.seen_by.join(", ")}`);
    if (alert.handling) parts.push(`${alert.handling.name} is handling it since ${when(alert.handling.since)}`);
    if (alert.help_requested_by.length) parts.push(`${alert.help_requested_by.join(", ")} asked for someone to be sent`);
    return parts.join(" · ");
  }

  function alertStatus(alert) {
    const parts = [when(alert.opened_at), STATE_WORDS[alert.state] || alert.state];
    if (alert.outcome) parts.push(alert.outcome);
    return parts.join(" · ");
  }

  function recentStatus(alert) {
    const active = alert.state !== "resolved";
    const parts = [alertStatus(alert)];
    const response = responseText(alert.staff_response, active);
    if (response) parts.push(response);
    const family = familyAnswers(alert);
    if (family) parts.push(family);
    return parts.join(" · ");
  }

  async function act(alert, action, item) {
    const error = item.querySelector('[data-testid="alert-error"]');
    error.hidden = true;
    for (const button of item.querySelectorAll("button")) button.disabled = true;
    try {
      await api("POST", `/api/family/alerts/${alert.id}/${action}`);
    } catch (err) {
      error.textContent = err.status === 0 ? "Could not reach the care service. Please call them." : err.message;
      error.hidden = false;
      for (const button of item.querySelectorAll("button")) button.disabled = false;
      return;
    }
    await refresh(); // the answer, as the record now shows it
  }

  function recentAlerts(alerts) {
    const box = make("section", { class: "recent", testid: "recent-alerts" });
    box.append(make("h3", {}, "Alerts in the last 7 days"));
    if (!alerts.length) {
      box.append(make("p", { class: "quiet", testid: "recent-empty" }, "None."));
      return box;
    }
    const list = make("ul", { class: "recent-list" });
    for (const alert of alerts) {
      const item = make("li", { testid: "recent-alert", "data-alert-id": alert.id, "data-state": alert.state });
      item.append(
        make("span", { class: "recent-rule", testid: "recent-alert-rule" }, RULES[alert.rule] || alert.rule),
        make("span", { class: "recent-meta", testid: "recent-alert-status" }, recentStatus(alert)),
      );
      list.append(item);
    }
    box.append(list);
    return box;
  }

  // The care service first (the home's desk or on-call line), then the resident's contacts.
  function contacts(careService, people) {
    const box = make("section", { class: "contacts", testid: "contacts" });
    box.append(make("h3", {}, "Contacts"));
    const list = make("ul", { class: "contact-list" });
    if (careService) {
      const item = make("li", { class: "care-service", testid: "care-service" });
      item.append(make("span", { class: "contact-name" }, `${careService.name} · Care service`));
      if (careService.phone) {
        item.append(
          make("a", { class: "btn call", href: telHref(careService.phone), testid: "care-service-call" }, `Call ${careService.phone}`),
        );
      } else {
        item.append(make("span", { class: "quiet" }, "No phone number listed"));
      }
      list.append(item);
    }
    for (const person of people) {
      const item = make("li", { testid: "contact" });
      const relation = RELATIONS[person.relation];
      item.append(make("span", { class: "contact-name" }, relation ? `${person.name} · ${relation}` : person.name));
      if (person.phone) {
        item.append(make("a", { class: "btn call", href: telHref(person.phone), testid: "contact-call" }, `Call ${person.phone}`));
      }
      list.append(item);
    }
    if (!list.children.length) {
      box.append(make("p", { class: "quiet" }, "No contacts listed."));
      return box;
    }
    box.append(list);
    return box;
  }

  // ---------------------------------------------------------------- staff: alerts to answer

  // The active alerts of the caller's zones (the staff API), each with its escalation record:
  // who was reached, who declined, whether nobody was reached, what the family said.
  async function loadStaff() {
    let alerts;
    try {
      alerts = (await api("GET", "/api/alerts?state=active&limit=50")).alerts;
    } catch (err) {
      if (err.status === 0) lost();
      return false;
    }
    const records = await Promise.all(
      alerts.map((alert) => api("GET", `/api/alerts/${alert.id}/escalation`).catch(() => null)),
    );
    if (!reachable) setReachable(true);
    save({ alerts, records });
    renderStaff(alerts, records);
    return true;
  }

  function renderStaff(alerts, records) {
    el.staffNone.hidden = alerts.length > 0;
    el.staffAlerts.replaceChildren(...alerts.map((alert, i) => staffCard(alert, records[i])));
    focusHashAlert();
  }

  function namesOf(record) {
    const names = {};
    for (const reached of (record && record.reached) || []) if (reached.user) names[reached.user] = reached.name;
    return names;
  }

  function staffCard(alert, record) {
    const who = lib.me() || {};
    const card = make("article", {
      class: `card alert-now priority-${alert.priority}`,
      testid: "staff-alert",
      "data-alert-id": alert.id,
      "data-state": alert.state,
      id: `alert-${alert.id}`,
    });
    const place = [alert.resident_name, roomWords(alert.room_name), alert.zone_name || alert.zone]
      .filter(Boolean)
      .join(" · ");
    card.append(
      make("p", { class: "alert-title", testid: "staff-alert-title" }, lib.ruleLabel(alert.rule)),
      make("p", { class: "place", testid: "staff-alert-place" }, place || alert.site),
    );
    const lines = [`Opened ${when(alert.opened_at)}`];
    const names = namesOf(record);
    if (alert.acknowledged_by === who.user) {
      lines.push(`You are going (acknowledged at ${when(alert.acknowledged_at)})`);
    } else if (alert.acknowledged_by) {
      const name = names[alert.acknowledged_by] || alert.acknowledged_by;
      lines.push(`${name} is going (acknowledged at ${when(alert.acknowledged_at)})`);
    }
    const declined = (record && record.declined_by) || [];
    const iDeclined = declined.includes(who.name);
    if (declined.length) lines.push(`Can't go: ${declined.join(", ")}`);
    card.append(make("p", { class: "alert-meta", testid: "staff-alert-status" }, lines.join(" · ")));
    if (record) card.append(...staffRecord(record));

    if (alert.state === "open") {
      const buttons = make("div", { class: "buttons" });
      const going = make("button", { type: "button", class: "btn primary", testid: "going-button" }, "I'm going");
      going.disabled = !reachable;
      going.addEventListener("click", () => answer(alert, "acknowledge", card));
      buttons.append(going);
      if (!iDeclined) {
        const cant = make("button", { type: "button", class: "btn", testid: "cant-button" }, "I can't");
        cant.disabled = !reachable;
        cant.addEventListener("click", () => answer(alert, "decline", card));
        buttons.append(cant);
      }
      if (!reachable) buttons.append(notNow("alert-offline"));
      card.append(buttons);
    }
    if (iDeclined) {
      card.append(
        make("p", { class: "alert-meta", testid: "staff-declined" }, "You said you can't go: the alarm went on to the next step at once."),
      );
    }
    card.append(make("p", { class: "error", testid: "staff-alert-error", role: "alert", hidden: true }));
    return card;
  }

  // The escalation record in words: nobody reached (an alarm of its own), who was reached.
  function staffRecord(record) {
    const parts = [];
    const nobody = record.nobody_reached || [];
    if (nobody.length) {
      const last = nobody[nobody.length - 1];
      parts.push(
        make(
          "p",
          { class: "banner nobody", testid: "staff-nobody-reached", role: "alert" },
          `NOBODY REACHED at ${when(last.at)}: ${last.reason}`,
        ),
      );
    }
    const reached = (record.reached || []).map((r) => `${r.name} (${CHANNEL_WORDS[r.channel] || r.channel}, ${lib.shortTime(r.at)})`);
    if (reached.length) {
      parts.push(make("p", { class: "alert-meta", testid: "staff-reached" }, `Reached: ${[...new Set(reached)].join(", ")}`));
    }
    const family = [];
    if ((record.family_seen_by || []).length) family.push(`Seen by family: ${record.family_seen_by.join(", ")}`);
    if (record.family_handling) family.push(`Family handling since ${when(record.family_handling.since)} (${record.family_handling.by})`);
    if ((record.help_requested_by || []).length) family.push(`Family asked for someone: ${record.help_requested_by.join(", ")}`);
    if (family.length) parts.push(make("p", { class: "alert-meta", testid: "staff-family" }, family.join(" · ")));
    return parts;
  }

  async function answer(alert, action, card) {
    const error = card.querySelector('[data-testid="staff-alert-error"]');
    error.hidden = true;
    for (const button of card.querySelectorAll("button")) button.disabled = true;
    try {
      await api("POST", `/api/alerts/${alert.id}/${action}`, { channel: "phone" });
    } catch (err) {
      error.textContent = err.status === 0 ? "Could not reach the hub. Call the nurses' station." : err.message;
      error.hidden = false;
      for (const button of card.querySelectorAll("button")) button.disabled = false;
      return;
    }
    await refresh();
  }

  function focusHashAlert() {
    const match = /alert=(\d+)/.exec(location.hash);
    const target = match && document.getElementById(`alert-${match[1]}`);
    if (target) target.scrollIntoView({ block: "center" });
  }

  // ---------------------------------------------------------------- service worker and push

  async function registerServiceWorker() {
    if (!("serviceWorker" in navigator)) {
      status.serviceWorker = "unsupported";
      return;
    }
    try {
      await navigator.serviceWorker.register("/sw.js", { scope: SW_SCOPE });
      await navigator.serviceWorker.ready;
      status.serviceWorker = "ready";
    } catch (error) {
      status.serviceWorker = "failed";
      status.lastError = String(error);
    }
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data && (event.data.type === "push" || event.data.type === "action")) refresh();
    });
  }

  function pushMessage(text, state) {
    status.push = state;
    el.pushStatus.textContent = text;
    el.pushStatus.dataset.state = state;
  }

  async function describePush() {
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      pushMessage("This browser cannot receive push alerts. Keep this page open, or ask the care service to call you.", "unsupported");
      el.pushEnable.hidden = true;
      return;
    }
    if (Notification.permission === "denied") {
      pushMessage("Notifications are blocked for this site. Allow them in the browser settings to get alerts.", "blocked");
      return;
    }
    const registration = await navigator.serviceWorker.ready;
    const subscription = await registration.pushManager.getSubscription().catch(() => null);
    if (subscription && Notification.permission === "granted") {
      // Sent again at every start: the browser may have renewed it since.
      await saveSubscription(subscription);
    } else {
      pushMessage("Alerts are off on this phone.", "off");
    }
  }

  function keyBytes(base64url) {
    const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  async function saveSubscription(subscription) {
    try {
      await api("POST", "/api/push/subscriptions", subscription.toJSON());
    } catch (err) {
      const detail = err.status === 0 ? "no answer" : err.message;
      pushMessage(`The care service did not accept this phone for alerts (${detail}).`, "failed");
      return;
    }
    pushMessage("Alerts are on: this phone will ring for a fall or a call.", "on");
    el.pushEnable.hidden = true;
  }

  el.pushEnable.addEventListener("click", async () => {
    el.pushEnable.disabled = true;
    try {
      await enablePush();
    } finally {
      el.pushEnable.disabled = false;
    }
  });

  async function enablePush() {
    if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
      pushMessage("This browser cannot receive push alerts. Keep this page open, or ask the care service to call you.", "unsupported");
      return;
    }
    const permission = await Notification.requestPermission();
    if (permission !== "granted") {
      pushMessage("Notifications were not allowed. Allow them in the browser settings to get alerts.", "blocked");
      return;
    }
    let key;
    try {
      key = await api("GET", "/api/push/key");
    } catch (_) {
      pushMessage("Could not reach the care service to turn on alerts. Try again later.", "failed");
      return;
    }
    const registration = await navigator.serviceWorker.ready;
    let subscription;
    try {
      subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: keyBytes(key.public_key),
      });
    } catch (error) {
      status.lastError = String(error);
      pushMessage(
        "This browser cannot receive push alerts (it has no push service). The app still works: keep it open, or ask the care service to call you.",
        "unsupported",
      );
      return;
    }
    await saveSubscription(subscription);
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && lib.me()) refresh();
  });
  window.addEventListener("hashchange", focusHashAlert);

  start();
})();
