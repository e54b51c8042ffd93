// carewatch family app: how a relative is now, their recent alerts, whom to call, and push alerts.
// Plain JS, no framework. All data is inserted with textContent, never as HTML.
"use strict";

(() => {
  const POLL_S = 15;
  const SW_SCOPE = "/family";
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

  // Exposed for tests and for anyone helping a relative set up their phone.
  const status = { refreshes: 0, push: "off", serviceWorker: "none", lastError: null };
  window.carewatchFamily = status;

  const lib = window.carewatch;
  const { make, api } = lib;
  const $ = lib.byTestId;
  const el = {
    loading: $("loading"),
    login: $("login-panel"),
    notFamily: $("not-family"),
    app: $("family-app"),
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

  // ---------------------------------------------------------------- helpers

  const weekdayDate = (epochS) =>
    new Date(epochS * 1000).toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" });

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
    for (const name of ["login", "notFamily", "app"]) el[name].hidden = name !== section;
    el.user.hidden = el.logout.hidden = section === "login";
  }

  // ---------------------------------------------------------------- sign in

  async function start() {
    registerServiceWorker();
    try {
      enter(await lib.whoAmI());
    } catch (err) {
      el.offline.hidden = err.status !== 0; // no answer at all: started offline from the cache
      show("login");
    }
  }

  function enter(who) {
    el.user.textContent = who.name;
    if (who.role !== "family") {
      show("notFamily");
      return;
    }
    show("app");
    describePush();
    refresh();
  }

  const login = lib.loginForm(enter, { unreachable: "Cannot reach the care service. Check your connection." });
  lib.onSessionEnded((message) => {
    clearTimeout(pollTimer);
    login.reset(message);
    show("login");
  });

  el.logout.addEventListener("click", async () => {
    await lib.signOut();
    clearTimeout(pollTimer);
    el.residents.replaceChildren();
    login.reset("");
    show("login");
  });

  // ---------------------------------------------------------------- data

  async function refresh() {
    clearTimeout(pollTimer);
    if (!lib.me()) return;
    let overview;
    try {
      overview = await api("GET", "/api/family");
    } catch (err) {
      if (err.status === 401) return; // the session has ended: the sign-in form is back
      el.offline.hidden = false;
    }
    if (overview) {
      el.offline.hidden = true;
      render(overview.residents);
      status.refreshes += 1;
      el.updated.textContent = `Updated ${when(Date.now() / 1000)}`;
    }
    pollTimer = setTimeout(refresh, POLL_S * 1000);
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
      head.append(
        make(
          "p",
          { class: "place", testid: "resident-place" },
          `Room ${person.place.room_name}, ${person.place.site_name}`,
        ),
      );
    }
    card.append(head, stateBlock(person.state));
    if (person.active_alerts.length) card.append(activeAlerts(person.active_alerts));
    card.append(recentAlerts(person.recent_alerts), contacts(person.contacts));
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

  function activeAlerts(alerts) {
    const box = make("section", { class: "active", testid: "active-alerts" });
    box.append(make("h3", {}, "Needs attention now"));
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
      );
      const buttons = make("div", { class: "buttons" });
      if (alert.state === "open") {
        const ack = make("button", { type: "button", class: "btn primary", testid: "acknowledge-button" }, "I've seen it");
        ack.addEventListener("click", () => act(alert, "acknowledge", item));
        buttons.append(ack);
      }
      const send = make("button", { type: "button", class: "btn", testid: "send-someone-button" }, "Send someone");
      send.disabled = alert.help_requested_by.length > 0;
      send.addEventListener("click", () => act(alert, "send-someone", item));
      buttons.append(send);
      item.append(buttons, make("p", { class: "error", testid: "alert-error", role: "alert", hidden: true }));
      box.append(item);
    }
    return box;
  }

  function alertStatus(alert) {
    const parts = [when(alert.opened_at), STATE_WORDS[alert.state] || alert.state];
    if (alert.acknowledged_by_name) {
      const via = alert.acknowledged_via ? ` ${alert.acknowledged_via}` : "";
      parts.push(`Acknowledged by ${alert.acknowledged_by_name}${via} at ${when(alert.acknowledged_at)}`);
    }
    if (alert.help_requested_by.length) parts.push(`Someone was asked to go (${alert.help_requested_by.join(", ")})`);
    if (alert.outcome) parts.push(alert.outcome);
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
    }
    await refresh();
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
        make("span", { class: "recent-meta", testid: "recent-alert-status" }, alertStatus(alert)),
      );
      list.append(item);
    }
    box.append(list);
    return box;
  }

  function contacts(people) {
    const box = make("section", { class: "contacts", testid: "contacts" });
    box.append(make("h3", {}, "Contacts"));
    if (!people.length) {
      box.append(make("p", { class: "quiet" }, "No contacts listed."));
      return box;
    }
    const list = make("ul", { class: "contact-list" });
    for (const person of people) {
      const item = make("li", { testid: "contact" });
      const relation = RELATIONS[person.relation];
      item.append(make("span", { class: "contact-name" }, relation ? `${person.name} · ${relation}` : person.name));
      if (person.phone) {
        const tel = person.phone.replace(/[^0-9+]/g, "");
        item.append(make("a", { class: "btn call", href: `tel:${tel}`, testid: "contact-call" }, `Call ${person.phone}`));
      }
      list.append(item);
    }
    box.append(list);
    return box;
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
