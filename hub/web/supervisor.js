// carewatch supervisor view: response times, overdue alerts, device trouble, beds by type.
// Plain JS, no framework. All data is inserted with textContent, never as HTML.
"use strict";

(() => {
  const REFRESH_S = 30;
  const BY_LABELS = { total: "All", site: "Site", zone: "Zone", shift: "Shift" };
  const PRIORITY_WORDS = { emergency: "Emergency", routine: "Routine", trouble: "Device trouble" };
  const KIND_LABELS = {
    care_home: "Care home",
    dementia: "Dementia care",
    nursing: "Nursing",
    family: "Family beds",
  };

  // Exposed for tests: how many times the view was drawn, and the last document.
  const status = { renders: 0, view: null };
  window.carewatchSupervisor = status;

  const lib = window.carewatch;
  const { make, api, dateText, dateTime, ruleLabel } = lib;
  const $ = lib.byTestId;
  // Response times count to the second.
  const duration = (seconds) => lib.duration(seconds, true);
  const el = {
    loading: $("loading"),
    login: $("login-panel"),
    view: $("supervisor"),
    viewError: $("view-error"),
    user: $("current-user"),
    logout: $("logout-button"),
    updated: $("updated"),
    controls: $("controls"),
    site: $("site-select"),
    since: $("since-input"),
    until: $("until-input"),
    period: $("period"),
    figures: $("figures-table").querySelector("tbody"),
    nobody: $("nobody-list"),
    nobodyEmpty: $("nobody-empty"),
    nobodyCount: $("nobody-count"),
    nobodyGroups: $("nobody-groups"),
    overdue: $("overdue-list"),
    overdueEmpty: $("overdue-empty"),
    overdueCount: $("overdue-count"),
    alerts: $("alerts-table").querySelector("tbody"),
    alertsEmpty: $("alerts-empty"),
    devices: $("devices-table").querySelector("tbody"),
    devicesEmpty: $("devices-empty"),
    gateways: $("gateways-offline"),
    beds: $("beds-table").querySelector("tbody"),
    exports: document.querySelectorAll("[data-export]"),
  };

  let refreshTimer = null;

  // ---------------------------------------------------------------- helpers

  function cell(text, cls) {
    return make("td", { class: cls }, text === null || text === undefined ? "–" : text);
  }

  function share(value) {
    return value === null || value === undefined ? null : `${(value * 100).toFixed(1)} %`;
  }

  function siteName(view, id) {
    const site = view.sites.find((s) => s.id === id);
    return site ? site.name : id;
  }

  function zoneName(view, site, id) {
    const zone = view.zones.find((z) => z.site === site && z.id === id);
    return zone ? zone.name : id;
  }

  function where(view, item) {
    const parts = [];
    if (view.sites.length > 1) parts.push(siteName(view, item.site));
    if (item.zone_name || item.zone) parts.push(item.zone_name || zoneName(view, item.site, item.zone));
    if (item.room_name) parts.push(/^\d/.test(item.room_name) ? `Room ${item.room_name}` : item.room_name);
    if (item.bed) parts.push(item.bed);
    if (!item.zone && item.gateway) parts.push(`gateway ${item.gateway}`);
    return parts.join(" · ");
  }

  // ---------------------------------------------------------------- query

  function query() {
    const params = new URLSearchParams();
    if (el.site.value) params.set("site", el.site.value);
    if (el.since.value) params.set("since", el.since.value);
    // "Until" names a whole day: the period ends at the start of the next one.
    if (el.until.value) {
      const next = new Date(`${el.until.value}T00:00:00Z`);
      next.setUTCDate(next.getUTCDate() + 1);
      params.set("until", next.toISOString().slice(0, 10));
    }
    const text = params.toString();
    return text ? `?${text}` : "";
  }

  function updateExportLinks() {
    const q = query();
    for (const link of el.exports) {
      link.href = `/api/supervisor/export/${link.dataset.export}.csv${q}`;
    }
  }

  // ---------------------------------------------------------------- render

  function setTile(id, n, level) {
    const tile = $(id);
    tile.querySelector(".tile-n").textContent = String(n);
    tile.dataset.level = level;
  }

  function renderTiles(view) {
    const counts = view.alert_counts;
    const devices = view.device_counts;
    const beds = view.beds.reduce((sum, row) => sum + row.beds, 0);
    const monitored = view.beds.reduce((sum, row) => sum + row.monitored, 0);
    setTile("tile-open", counts.open + counts.acknowledged, counts.open ? "warn" : "good");
    setTile("tile-overdue", counts.overdue, counts.overdue ? "bad" : "good");
    const nobody = view.nobody_reached_alerts.length;
    setTile("tile-nobody", nobody, nobody ? "bad" : "good");
    setTile("tile-offline", devices.offline, devices.offline ? "bad" : "good");
    setTile("tile-battery", devices.low_battery, devices.low_battery ? "warn" : "good");
    setTile("tile-beds", `${monitored} / ${beds}`, monitored < beds ? "warn" : "good");
  }

  function renderFigures(view) {
    const rows = view.figures.map((f) => {
      const group = f.by === "zone" ? zoneName(view, f.site, f.group) : f.group;
      const tr = make("tr", { testid: "figure-row", "data-by": f.by, "data-group": f.group || "" });
      const goal60 = view.targets.ack_within_60s;
      const goal180 = view.targets.ack_within_180s;
      const shareClass = (value, goal) => (value === null ? "num muted" : value >= goal ? "num" : "num below");
      tr.append(
        cell(BY_LABELS[f.by] || f.by),
        cell(f.site ? siteName(view, f.site) : f.by === "total" ? "All sites" : null),
        cell(group),
        cell(f.alerts, "num"),
        cell(f.acknowledged, "num"),
        cell(duration(f.ack_median_s), "num"),
        cell(duration(f.ack_p90_s), "num"),
        make("td", { class: shareClass(f.ack_within_60s, goal60), testid: "share-60" }, share(f.ack_within_60s) ?? "–"),
        make("td", { class: shareClass(f.ack_within_180s, goal180), testid: "share-180" }, share(f.ack_within_180s) ?? "–"),
        cell(f.resolved, "num"),
        cell(duration(f.resolve_median_s), "num"),
        f.meets_target === null
          ? cell("no data", "muted")
          : cell(f.meets_target ? "met" : "missed", f.meets_target ? "met" : "below"),
        make("td", { class: f.nobody_reached ? "num below" : "num", testid: "nobody-reached" }, String(f.nobody_reached)),
        make("td", { class: "wrap", testid: "family-answers" }, familyText(f)),
      );
      return tr;
    });
    el.figures.replaceChildren(...rows);
  }

  // A relative's answers, apart from the staff figures: "1 seen, 1 handling (median 15 s)".
  function familyText(f) {
    if (!f.family_seen && !f.family_handling) return "–";
    const parts = [];
    if (f.family_seen) parts.push(`${f.family_seen} seen`);
    if (f.family_handling) parts.push(`${f.family_handling} handling`);
    const median = duration(f.family_response_median_s);
    return median ? `${parts.join(", ")} (median ${median})` : parts.join(", ");
  }

  function renderNobody(view) {
    const listed = view.nobody_reached_alerts;
    const items = listed.map((a) => {
      const li = make("li", {
        class: "overdue-item",
        testid: "nobody-item",
        "data-alert-id": a.id,
        "data-priority": a.priority,
      });
      const answered = a.acknowledged_at
        ? `acknowledged by ${a.acknowledged_by_name || "staff"} after ${duration(a.acknowledged_at - a.opened_at)}`
        : a.state === "resolved"
          ? "resolved without a staff acknowledgement"
          : "no staff acknowledgement";
      const times = a.times > 1 ? ` (${a.times} times)` : "";
      li.append(
        make("span", { class: "overdue-what", testid: "nobody-rule" }, ruleLabel(a.rule)),
        make("span", { class: "overdue-where", testid: "nobody-where" }, where(view, a) || siteName(view, a.site)),
        make("span", { class: "overdue-who" }, a.resident_name || ""),
        make("span", { class: "overdue-late", testid: "nobody-reason" }, `nobody reached${times}: ${a.reason || "no reason recorded"}`),
        make("span", { class: "overdue-state", testid: "nobody-shift" }, `${a.shift} shift · opened ${dateTime(a.opened_at)} · ${answered}`),
      );
      return li;
    });
    el.nobody.replaceChildren(...items);
    el.nobodyEmpty.hidden = listed.length > 0;
    el.nobodyCount.textContent = String(listed.length);
    const groups = view.nobody_reached_counts
      .filter((c) => c.by === "zone" || c.by === "shift")
      .map((c) => {
        const name = c.by === "zone" ? zoneName(view, c.site, c.group) : `${c.group} shift`;
        return `${name}: ${c.alerts}`;
      });
    el.nobodyGroups.textContent = groups.length ? groups.join(" · ") : "";
    el.nobodyGroups.hidden = groups.length === 0;
  }

  function renderOverdue(view) {
    const overdue = view.alerts.filter((a) => a.overdue);
    const items = overdue.map((a) => {
      const li = make("li", {
        class: "overdue-item",
        testid: "overdue-item",
        "data-alert-id": a.id,
        "data-priority": a.priority,
      });
      const late =
        a.state === "acknowledged"
          ? `acknowledged by ${a.acknowledged_by_name || "someone"}, not resolved — ${duration(a.overdue_s)} past the re-alert time`
          : `not acknowledged — ${duration(a.overdue_s)} overdue`;
      li.append(
        make("span", { class: "overdue-what", testid: "overdue-rule" }, ruleLabel(a.rule)),
        make("span", { class: "overdue-where", testid: "overdue-where" }, where(view, a)),
        make("span", { class: "overdue-who" }, a.resident_name || ""),
        make("span", { class: "overdue-late", testid: "overdue-late" }, late),
        make("span", { class: "overdue-state" }, `opened ${dateTime(a.opened_at)}`),
      );
      return li;
    });
    el.overdue.replaceChildren(...items);
    el.overdueEmpty.hidden = overdue.length > 0;
    el.overdueCount.textContent = String(overdue.length);
  }

  function renderAlerts(view) {
    const rows = view.alerts.map((a) => {
      const tr = make("tr", { testid: "alert-row", "data-alert-id": a.id, "data-overdue": a.overdue });
      tr.append(
        cell(ruleLabel(a.rule)),
        cell(PRIORITY_WORDS[a.priority] || a.priority),
        cell(
          (a.state === "acknowledged" ? `acknowledged by ${a.acknowledged_by_name || "someone"}` : "unanswered") +
            (a.nobody_reached_at ? " · nobody reached" : ""),
          a.nobody_reached_at ? "wrap below" : "wrap",
        ),
        cell(where(view, a)),
        cell(a.resident_name ? `${a.resident_name} (${a.resident_code})` : null, "wrap"),
        cell(dateTime(a.opened_at)),
        cell(duration(view.generated_at - a.opened_at), "num"),
      );
      return tr;
    });
    el.alerts.replaceChildren(...rows);
    el.alertsEmpty.hidden = rows.length > 0;
  }

  function renderDevices(view) {
    const rows = view.devices.map((d) => {
      const tr = make("tr", { testid: "device-row", "data-device": d.device });
      const battery =
        d.battery === null ? null : `${Math.round(d.battery)} %${d.low_battery ? ` (below ${d.battery_low} %)` : ""}`;
      tr.append(
        cell(d.device_name || "a device no longer registered"),
        cell(d.model),
        cell(where(view, d)),
        cell(d.offline ? d.offline_why : "online", d.offline ? "wrap below" : "muted"),
        cell(d.low_battery ? battery || "low" : battery, d.low_battery ? "below" : undefined),
        cell(dateTime(d.last_seen)),
      );
      return tr;
    });
    el.devices.replaceChildren(...rows);
    el.devicesEmpty.hidden = rows.length > 0;
    const gateways = view.gateways_offline.map(
      (g) => `gateway ${g.gateway} (${g.where}${view.sites.length > 1 ? `, ${siteName(view, g.site)}` : ""}) since ${dateTime(g.since)}`,
    );
    el.gateways.textContent = gateways.length ? `Gateways offline: ${gateways.join(", ")}` : "";
    el.gateways.hidden = gateways.length === 0;
  }

  function renderBeds(view) {
    const rows = view.beds.map((b) => {
      const tr = make("tr", { testid: "beds-row", "data-kind": b.zone_kind });
      tr.append(
        cell(siteName(view, b.site)),
        cell(KIND_LABELS[b.zone_kind] || b.zone_kind),
        cell(b.beds, "num"),
        cell(b.monitored, "num"),
        cell(b.fall_radar, "num"),
        cell(b.vital_signs_radar, "num"),
        cell(b.bed_sensor, "num"),
        cell(b.call_button, "num"),
        cell(b.none, b.none ? "num below" : "num"),
      );
      return tr;
    });
    el.beds.replaceChildren(...rows);
  }

  function renderSites(view) {
    if (el.site.options.length) return;
    const options = [make("option", { value: "" }, view.sites.length > 1 ? "All my sites" : "My site")];
    if (view.sites.length > 1) {
      for (const site of view.sites) options.push(make("option", { value: site.id }, site.name));
    }
    el.site.replaceChildren(...options);
  }

  function render(view) {
    status.view = view;
    renderSites(view);
    renderTiles(view);
    renderFigures(view);
    renderNobody(view);
    renderOverdue(view);
    renderAlerts(view);
    renderDevices(view);
    renderBeds(view);
    el.period.textContent = `${dateText(view.since)} to ${dateTime(view.until)}`;
    el.updated.textContent = `Updated ${lib.clockTime(view.generated_at)}`;
    el.updated.hidden = false;
    updateExportLinks();
    status.renders += 1;
  }

  // ------------------------------------------------------------------ flow

  async function load() {
    clearTimeout(refreshTimer);
    try {
      const view = await api("GET", `/api/supervisor${query()}`);
      el.viewError.hidden = true;
      render(view);
    } catch (err) {
      if (err.status === 401) return; // the session has ended: the sign-in form is back
      el.viewError.textContent =
        err.status === 403 ? "Your role cannot see the supervisor view." : err.message;
      el.viewError.hidden = false;
      if (err.status === 403) {
        el.view.hidden = true;
        return;
      }
    }
    refreshTimer = setTimeout(load, REFRESH_S * 1000);
  }

  const login = lib.loginForm(start);
  lib.onSessionEnded(showLogin);

  function showLogin(message) {
    clearTimeout(refreshTimer);
    el.loading.hidden = true;
    el.view.hidden = true;
    el.viewError.hidden = true;
    el.user.hidden = true;
    el.logout.hidden = true;
    el.updated.hidden = true;
    el.login.hidden = false;
    login.reset(message);
    login.focus();
  }

  async function start(who) {
    el.loading.hidden = true;
    el.login.hidden = true;
    el.user.textContent = lib.userLabel(who);
    el.user.hidden = false;
    el.logout.hidden = false;
    if (!who.permissions.includes("figures.read")) {
      el.viewError.textContent = "Your role cannot see the supervisor view.";
      el.viewError.hidden = false;
      return;
    }
    el.view.hidden = false;
    await load();
  }

  el.controls.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  el.controls.addEventListener("change", updateExportLinks);

  el.logout.addEventListener("click", async () => {
    await lib.signOut();
    showLogin("");
  });

  async function boot() {
    try {
      await start(await lib.whoAmI());
    } catch (err) {
      showLogin(err.status === 401 ? "" : err.message);
    }
  }

  boot();
})();
