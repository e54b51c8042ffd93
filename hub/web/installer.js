// carewatch installer's page: start a walk test on a site or a gateway and watch every device
// being ticked off live. Plain JS, no framework. All data is inserted with textContent.
"use strict";

(() => {
  const lib = window.carewatch;
  const { make, api, clockTime } = lib;
  const $ = lib.byTestId;
  const el = {
    login: $("login-form"),
    user: $("current-user"),
    panel: $("walktest"),
    scope: $("scope"),
    start: $("start"),
    stop: $("stop"),
    bed: $("bed-filter"),
    state: $("state"),
    progress: $("progress"),
    error: $("error"),
    links: $("report-links"),
    checklist: $("checklist"),
    coverage: $("coverage"),
    warnings: $("coverage-warnings"),
  };

  let current = null; // the walk test's last status
  let source = null; // its live stream
  let bedFilter = null; // {code, site, room} from #bed=CODE

  function showError(message) {
    el.error.textContent = message || "";
    el.error.hidden = !message;
  }

  // ---------------------------------------------------------------- login

  const login = lib.loginForm(loggedIn, { testids: { username: "login-user" } });
  lib.onSessionEnded((message) => {
    closeStream();
    el.panel.hidden = true;
    showLogin(message);
  });

  function showLogin(message) {
    el.user.hidden = true;
    el.login.hidden = false;
    login.reset(message);
    login.focus();
  }

  async function whoAmI() {
    try {
      await loggedIn(await lib.whoAmI());
    } catch (error) {
      if (error.status !== 401) throw error;
      showLogin("");
    }
  }

  async function loggedIn(me) {
    el.user.textContent = me.name;
    el.user.hidden = false;
    el.login.hidden = true;
    el.panel.hidden = false;
    await loadScopes(me.sites);
    await applyBed();
    await resumeRunning();
  }

  // ---------------------------------------------------------------- scope and bed

  async function loadScopes(sites) {
    const { gateways } = await api("GET", "/api/gateways");
    el.scope.replaceChildren();
    for (const site of sites) {
      el.scope.append(make("option", { value: site.id }, `Site: ${site.name} (${site.id})`));
      for (const gw of gateways.filter((g) => g.site === site.id)) {
        el.scope.append(make("option", { value: `${site.id}/${gw.id}` }, `  Gateway: ${gw.site}/${gw.id}`));
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

  async function resumeRunning() {
    const { walktests } = await api("GET", "/api/walktests");
    const running = walktests.find((t) => t.running);
    if (running) follow(running);
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

  el.stop.addEventListener("click", async () => {
    showError("");
    try {
      render(await api("POST", `/api/walktests/${current.id}/stop`));
      closeStream();
    } catch (error) {
      showError(error.message);
    }
  });

  function follow(status) {
    render(status);
    closeStream();
    source = new EventSource(`/api/walktests/${status.id}/stream`);
    source.addEventListener("walktest", (event) => render(JSON.parse(event.data)));
  }

  function closeStream() {
    if (source) source.close();
    source = null;
  }

  function render(status) {
    current = status;
    const who = `${status.scope}, started ${clockTime(status.started_at)} by ${status.started_by}`;
    el.state.textContent = status.running ? `Walk test ${status.id} running: ${who}` : `Walk test ${status.id} ended at ${clockTime(status.ended_at)}: ${who}`;
    el.start.hidden = status.running;
    el.stop.hidden = !status.running;
    el.scope.disabled = status.running;
    const rows = status.devices.filter(shown);
    const passed = rows.filter((row) => row.passed_at !== null).length;
    el.progress.textContent = `${passed} of ${rows.length} devices passed`;
    el.checklist.replaceChildren(...rows.map(checklistRow));
    renderLinks(status);
    renderWarnings(status);
  }

  // Rules switched on that the devices fitted cannot drive (docs/rules-and-devices.md); with a
  // bed chosen, that bed's only.
  function renderWarnings(status) {
    const warnings = (status.warnings || []).filter((w) => !bedFilter || w.bed === bedFilter.code);
    el.warnings.replaceChildren(...warnings.map((w) => make("li", { testid: "coverage-warning", "data-rule": w.rule }, w.text)));
    el.coverage.hidden = warnings.length === 0;
  }

  function renderLinks(status) {
    el.links.replaceChildren();
    el.links.hidden = status.running;
    if (status.running) return;
    el.links.append(
      make("a", { href: `/api/walktests/${status.id}/report.html`, target: "_blank", testid: "report-html" }, "Commissioning report (HTML)"),
      make("a", { href: `/api/walktests/${status.id}/report.pdf`, target: "_blank", testid: "report-pdf" }, "Commissioning report (PDF)"),
    );
  }

  function checklistRow(row) {
    const passed = row.passed_at !== null;
    const tr = make("tr", { testid: "device-row", "data-device": row.device, "data-passed": String(passed) });
    const where = row.bed ? `Bed ${row.bed} · ${row.room_name}` : `Room ${row.room_name}`;
    tr.append(
      make("td", { class: "tick", "aria-label": passed ? "passed" : "waiting" }, passed ? "✓" : "○"),
      make("td", { class: "device" }, row.device),
      make("td", {}, where),
      make("td", {}, row.profile),
      make("td", { testid: "device-when" }, passed ? `${clockTime(row.passed_at)} · ${row.trigger}` : ""),
      make("td", {}, row.rssi === null ? "—" : `${row.rssi} dBm`),
      make("td", {}, row.battery === null ? "—" : `${row.battery} %`),
    );
    return tr;
  }

  whoAmI().catch((error) => showError(error.message));
})();
