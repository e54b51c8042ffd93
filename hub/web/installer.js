// carewatch installer's page, made for the installer's phone: start a walk test on a site or a
// gateway, watch every device being ticked off live, stop it (asked first while devices have
// not passed), and find the reports of past walk tests. When the hub cannot be reached it says
// so at once, and a page opened while the hub is down (its shell kept by /staff-sw.js) shows
// the walk test as last known, from this browser's storage (cleared at sign-out).
// Plain JS, no framework. All data is inserted with textContent.
"use strict";

(() => {
  const STORAGE_KEY = "carewatch.installer.lastSeen";
  const HEALTH_EVERY_MS = 3000;
  const OFFLINE_TEXT = "No contact with the hub — new walk-test results are not reaching this screen.";
  const TRIGGERS = {
    call_button: "call button pressed",
    fall: "fall detected",
    device_test: "test button pressed",
    "presence true": "someone seen",
    "motion true": "movement seen",
    "occupancy true": "someone on the bed",
    "contact_open true": "door opened",
    "smoke true": "smoke detected",
  };

  const lib = window.carewatch;
  const { make, api, clockTime } = lib;
  const $ = lib.byTestId;
  const el = {
    login: $("login-form"),
    user: $("current-user"),
    logout: $("logout-button"),
    banner: $("offline-banner"),
    panel: $("walktest"),
    notInstaller: $("not-installer"),
    scope: $("scope"),
    start: $("start"),
    stop: $("stop"),
    offlineNote: $("offline-note"),
    confirm: $("stop-confirm"),
    confirmText: $("stop-confirm-text"),
    confirmYes: $("stop-confirm-yes"),
    confirmNo: $("stop-confirm-no"),
    bed: $("bed-filter"),
    state: $("state"),
    progress: $("progress"),
    error: $("error"),
    links: $("report-links"),
    checklist: $("checklist"),
    coverage: $("coverage"),
    warnings: $("coverage-warnings"),
    past: $("past"),
    pastList: $("past-list"),
    pastEmpty: $("past-empty"),
  };

  let me = null; // the signed-in user, as /api/me says (or as last known, offline)
  let current = null; // the walk test's last status
  let past = []; // ended walk tests, newest first
  let source = null; // the walk test's live stream
  let bedFilter = null; // {code, site, room} from #bed=CODE
  let online = true;
  let lastKnownAt = null; // when what is shown was last heard from the hub (epoch s)

  function showError(message) {
    el.error.textContent = message || "";
    el.error.hidden = !message;
  }

  // ---------------------------------------------------------------- what this browser keeps

  function save() {
    if (!me || !online) return;
    lastKnownAt = Date.now() / 1000;
    lib.keep(STORAGE_KEY, { at: lastKnownAt, user: me.user, name: me.name, status: current, past });
  }

  function saved() {
    const kept = lib.kept(STORAGE_KEY);
    return kept && kept.user ? kept : null;
  }

  function forget() {
    lib.forgetKept(STORAGE_KEY);
  }

  // ---------------------------------------------------------------- sign in and out

  const login = lib.loginForm(loggedIn, {
    testids: { username: "login-user" },
    unreachable: "Cannot reach the hub. Check the phone's network and try again.",
  });
  lib.onSessionEnded((message) => signedOut(message));

  function showLogin(message) {
    el.user.hidden = el.logout.hidden = true;
    el.panel.hidden = el.past.hidden = el.notInstaller.hidden = true;
    el.login.hidden = false;
    login.reset(message);
    login.focus();
  }

  function signedOut(message) {
    closeStream();
    closeConfirm();
    forget();
    me = current = null;
    past = [];
    // nothing of the walk test stays on a phone that may be handed on
    el.state.textContent = "No walk test running.";
    el.progress.textContent = "";
    for (const list of [el.checklist, el.links, el.warnings, el.pastList]) list.replaceChildren();
    showLogin(message);
  }

  el.logout.addEventListener("click", async () => {
    await lib.signOut();
    signedOut("");
  });

  function showUser(who) {
    el.user.textContent = who.name || who.user;
    el.user.hidden = el.logout.hidden = false;
    el.login.hidden = true;
    el.panel.hidden = el.past.hidden = false;
  }

  async function loggedIn(who) {
    me = who;
    showUser(who);
    if (!(who.permissions || []).includes("walktest")) {
      // signed in, but not as someone who may run walk tests: say so, not the hub's refusal
      el.panel.hidden = el.past.hidden = true;
      el.notInstaller.hidden = false;
      return;
    }
    await loadScopes(who.sites);
    await applyBed();
    await loadTests();
  }

  async function start() {
    registerServiceWorker();
    watchHub();
    try {
      await loggedIn(await lib.whoAmI());
    } catch (error) {
      if (error.status === 0) {
        startedOffline();
        return;
      }
      if (error.status !== 401) throw error;
      forget(); // a session that ended while the page was closed
      showLogin("");
    }
  }

  // Opened while the hub cannot be reached: the walk test as this browser last knew it.
  function startedOffline() {
    setOnline(false);
    const kept = saved();
    if (!kept) {
      showLogin("");
      return;
    }
    me = { user: kept.user, name: kept.name };
    lastKnownAt = kept.at;
    past = kept.past || [];
    showUser(me);
    if (kept.status) {
      // the hub's list of sites and gateways is not kept: the walk test's own scope stands in
      el.scope.replaceChildren(make("option", { value: kept.status.scope }, kept.status.scope_name || kept.status.scope));
      render(kept.status);
    }
    renderPast();
    showBanner();
  }

  function registerServiceWorker() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.register("/staff-sw.js").catch(() => undefined);
  }

  // ---------------------------------------------------------------- the hub there or not

  // Asked every few seconds, and at once when the live stream breaks: the banner shows
  // within seconds of losing the hub, and goes when it answers again.
  async function checkHub() {
    let answered = false;
    try {
      answered = (await fetch("/api/health", { cache: "no-store" })).ok;
    } catch (_) {
      answered = false;
    }
    if (answered !== online) await setOnline(answered);
  }

  function watchHub() {
    setInterval(checkHub, HEALTH_EVERY_MS);
  }

  async function setOnline(now) {
    online = now;
    showBanner();
    el.start.disabled = el.stop.disabled = !online;
    el.offlineNote.hidden = online;
    if (!online) {
      closeConfirm();
      closeStream();
      if (current) render(current);
      renderPast();
      return;
    }
    showError("");
    try {
      if (!me) return; // the sign-in form: nothing to load
      if (!lib.me()) await loggedIn(await lib.whoAmI()); // opened offline: signed in still?
      else if (!el.panel.hidden) await loadTests();
    } catch (error) {
      if (error.status === 401) signedOut("");
      else if (error.status !== 0) showError(error.message);
    }
  }

  function showBanner() {
    el.banner.hidden = online;
    if (online) return;
    const since = lastKnownAt ? ` Shown: the walk test as known at ${lib.stampText(lastKnownAt)}.` : "";
    el.banner.textContent = OFFLINE_TEXT + since;
  }

  // ---------------------------------------------------------------- scope and bed

  async function loadScopes(sites) {
    const { gateways } = await api("GET", "/api/gateways");
    el.scope.replaceChildren();
    for (const site of sites) {
      el.scope.append(make("option", { value: site.id }, `${site.name} — whole site`));
      for (const gw of gateways.filter((g) => g.site === site.id)) {
        el.scope.append(make("option", { value: `${site.id}/${gw.id}` }, `${site.name} — gateway ${gw.name || gw.id}`));
      }
    }
  }

  async function applyBed() {
    const match = /(?:^|&)bed=([^&]+)/.exec(location.hash.slice(1));
    bedFilter = null;
    el.bed.hidden = true;
    if (match) {
      const code = decodeURIComponent(match[1]);
      try {
        const bed = await api("GET", `/api/beds/${encodeURIComponent(code)}`);
        bedFilter = { code: bed.code, site: bed.site, room: bed.room };
        if (!current || !current.running) el.scope.value = bed.site;
        el.bed.textContent = `Bed ${bed.code}: its devices and its room's. `;
        el.bed.append(make("a", { href: "#" }, "Show all devices"));
        el.bed.hidden = false;
      } catch (error) {
        showError(`Bed ${code}: ${error.message}`);
      }
    }
    if (current) render(current);
  }

  window.addEventListener("hashchange", () => applyBed());

  function shown(row) {
    if (!bedFilter) return true;
    return row.bed === bedFilter.code || (row.bed === null && row.room === bedFilter.room);
  }

  // ---------------------------------------------------------------- the walk test

  // The latest walk tests: one still running is followed again, the ended ones are listed.
  async function loadTests() {
    const { walktests } = await api("GET", "/api/walktests?view=summary");
    past = walktests.filter((t) => !t.running).map(pastSummary);
    const running = walktests.find((t) => t.running);
    if (running) follow(await api("GET", `/api/walktests/${running.id}`));
    else if (current && current.running) render(await api("GET", `/api/walktests/${current.id}`));
    renderPast();
    save();
  }

  el.start.addEventListener("click", async () => {
    showError("");
    const [site, gateway] = el.scope.value.split("/");
    try {
      follow(await api("POST", "/api/walktests", { site, gateway: gateway || null }));
    } catch (error) {
      showError(error.message);
    }
  });

  // Stopping with devices not passed yet is asked first, in the page's own dialog.
  el.stop.addEventListener("click", () => {
    showError("");
    const waiting = current.total - current.passed;
    if (waiting <= 0) {
      stopNow();
      return;
    }
    el.confirmText.textContent =
      waiting === 1 ? "1 device has not passed. Stop the walk test anyway?" : `${waiting} devices have not passed. Stop the walk test anyway?`;
    el.confirm.showModal();
    el.confirmNo.focus();
  });

  el.confirmYes.addEventListener("click", () => {
    closeConfirm();
    stopNow();
  });
  el.confirmNo.addEventListener("click", () => {
    closeConfirm();
    el.stop.focus();
  });

  function closeConfirm() {
    if (el.confirm.open) el.confirm.close();
  }

  async function stopNow() {
    try {
      const ended = await api("POST", `/api/walktests/${current.id}/stop`);
      closeStream();
      render(ended);
      await loadTests();
    } catch (error) {
      showError(error.message);
    }
  }

  function follow(status) {
    render(status);
    closeStream();
    source = new EventSource(`/api/walktests/${status.id}/stream`);
    source.addEventListener("walktest", (event) => render(JSON.parse(event.data)));
    source.addEventListener("error", () => checkHub());
  }

  function closeStream() {
    if (source) source.close();
    source = null;
  }

  function startedBy(status) {
    return me && status.started_by === me.user ? "you" : status.started_by;
  }

  function render(status) {
    current = status;
    const scope = status.scope_name || status.scope;
    const who = `${scope}, started ${lib.stampText(status.started_at)} by ${startedBy(status)}`;
    el.state.textContent = status.running
      ? `Walk test ${status.id} running: ${who}`
      : `Walk test ${status.id} ended at ${lib.stampText(status.ended_at)}: ${who}`;
    el.start.hidden = status.running;
    el.stop.hidden = !status.running;
    el.scope.disabled = status.running || !online;
    el.start.disabled = el.stop.disabled = !online;
    const rows = status.devices.filter(shown);
    const passed = rows.filter((row) => row.passed_at !== null).length;
    el.progress.textContent = `${passed} of ${rows.length} devices passed`;
    el.checklist.replaceChildren(...rows.map(deviceCard));
    renderLinks(status);
    renderWarnings(status);
    save();
  }

  // Rules switched on that the devices fitted cannot drive (docs/rules-and-devices.md); with a
  // bed chosen, that bed's only.
  function renderWarnings(status) {
    const warnings = (status.warnings || []).filter((w) => !bedFilter || w.bed === bedFilter.code);
    el.warnings.replaceChildren(...warnings.map((w) => make("li", { testid: "coverage-warning", "data-rule": w.rule }, w.text)));
    el.coverage.hidden = warnings.length === 0;
  }

  function reportLinks(id, testids = {}) {
    if (!online) return [make("span", { class: "quiet" }, "Reports: not available while the hub is unreachable")];
    return [
      make("a", { href: `/api/walktests/${id}/report.html`, target: "_blank", testid: testids.html }, "Commissioning report"),
      make("a", { href: `/api/walktests/${id}/report.pdf`, target: "_blank", testid: testids.pdf }, "PDF"),
    ];
  }

  function renderLinks(status) {
    el.links.hidden = status.running;
    el.links.replaceChildren(...(status.running ? [] : reportLinks(status.id, { html: "report-html", pdf: "report-pdf" })));
  }

  function triggerWords(trigger) {
    return TRIGGERS[trigger] || String(trigger || "").replace(/_/g, " ");
  }

  function deviceCard(row) {
    const passed = row.passed_at !== null;
    const card = make("li", { class: "device", testid: "device-row", "data-device": row.device, "data-passed": String(passed) });
    const head = make("p", { class: "device-head" });
    head.append(
      make("span", { class: "tick", "aria-hidden": "true" }, passed ? "✓" : "○"),
      make("span", { class: "device-status", testid: "device-status" }, passed ? "Passed" : "Waiting"),
      make("strong", { class: "device-name", testid: "device-name" }, row.device_name || row.device),
    );
    const where = [
      row.bed ? `Bed ${row.bed}` : null,
      row.resident_name,
      row.zone_name,
      row.profile_name || row.profile,
      `registered as ${row.device}`,
    ].filter(Boolean);
    const facts = make("dl", { class: "device-facts" });
    facts.append(
      fact("Passed", passed ? `${clockTime(row.passed_at)} · ${triggerWords(row.trigger)}` : "", "device-when"),
      fact("Signal", row.rssi === null ? "—" : `${row.rssi} dBm`),
      fact("Battery", row.battery === null ? "—" : `${row.battery} %`),
    );
    card.append(head, make("p", { class: "device-where" }, where.join(" · ")), facts);
    return card;
  }

  function fact(label, value, testid) {
    const group = make("div");
    group.append(make("dt", {}, label), make("dd", { testid }, value || "not yet"));
    return group;
  }

  // ---------------------------------------------------------------- past walk tests

  function pastSummary(status) {
    return {
      id: status.id,
      scope: status.scope_name || status.scope,
      ended_at: status.ended_at,
      started_by: status.started_by,
      passed: status.passed,
      total: status.total,
    };
  }

  function renderPast() {
    el.pastEmpty.hidden = past.length > 0;
    el.pastList.replaceChildren(...past.map(pastItem));
  }

  function pastItem(test) {
    const item = make("li", { testid: "past-test", "data-walktest": test.id });
    const by = me && test.started_by === me.user ? "you" : test.started_by;
    item.append(
      make("span", { class: "past-what" }, `Walk test ${test.id}: ${test.scope}`),
      make("span", { class: "past-meta" }, `ended ${lib.stampText(test.ended_at)}, by ${by} · ${test.passed} of ${test.total} devices passed`),
    );
    const links = make("span", { class: "links" });
    links.append(...reportLinks(test.id, { html: "past-report", pdf: "past-report-pdf" }));
    item.append(links);
    return item;
  }

  start().catch((error) => showError(error.message));
})();
