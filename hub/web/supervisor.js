// carewatch supervisor view: response times, overdue alerts, device trouble, beds by type.
// Plain JS, no framework. All data is inserted with textContent, never as HTML.
"use strict";

(() => {
  const REFRESH_S = 30;
  const RULE_LABELS = {
    fall: "Fall",
    call_button: "Call button",
    smoke: "Smoke alarm",
    stillness: "No movement",
    inactivity: "No movement",
    tamper: "Device tampered with",
    bed_exit: "Not back in bed",
    door_at_night: "Door opened at night",
    vital_signs: "Vital signs",
    device_offline: "Device offline",
    gateway_offline: "Gateway offline",
    low_battery: "Low battery",
  };
  const BY_LABELS = { total: "All", site: "Site", zone: "Zone", shift: "Shift" };
  const KIND_LABELS = {
    care_home: "Care home",
    dementia: "Dementia care",
    nursing: "Nursing",
    family: "Family beds",
  };

  // Exposed for tests: how many times the view was drawn, and the last document.
  const status = { renders: 0, view: null };
  window.carewatchSupervisor = status;

  const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
  const el = {
    loading: $("loading"),
    login: $("login-panel"),
    loginForm: $("login-form"),
    username: $("login-username"),
    password: $("login-password"),
    loginError: $("login-error"),
    loginSubmit: $("login-submit"),
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

  let me = null;
  let refreshTimer = null;

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // ---------------------------------------------------------------- helpers

  function make(tag, attrs = {}, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "testid") node.dataset.testid = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function cell(text, cls) {
    return make("td", { class: cls }, text === null || text === undefined ? "–" : text);
  }

  const pad = (n) => String(n).padStart(2, "0");

  function dateText(epochS) {
    const d = new Date(epochS * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  function stampText(epochS) {
    if (epochS === null || epochS === undefined) return null;
    const d = new Date(epochS * 1000);
    return `${dateText(epochS)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return null;
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
    return `${Math.floor(h / 24)} days`;
  }

  function share(value) {
    return value === null || value === undefined ? null : `${(value * 100).toFixed(1)} %`;
  }

  function ruleLabel(rule) {
    if (RULE_LABELS[rule]) return RULE_LABELS[rule];
    const words = String(rule || "alert").replace(/[_-]+/g, " ").trim();
    return words.charAt(0).toUpperCase() + words.slice(1);
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
    if (item.room_name) parts.push(`Room ${item.room_name}`);
    if (item.bed) parts.push(item.bed);
    if (!item.zone && item.gateway) parts.push(`gateway ${item.gateway}`);
    return parts.join(" · ");
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET" && me) headers["X-CSRF-Token"] = me.csrf_token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        credentials: "same-origin",
        cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      throw new ApiError(0, "Cannot reach the hub. Check the network and try again.");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      let detail = data && data.detail;
      if (typeof detail !== "string") detail = `The hub answered ${response.status}.`;
      throw new ApiError(response.status, detail);
    }
    return data;
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
      );
      return tr;
    });
    el.figures.replaceChildren(...rows);
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
          ? `acknowledged by ${a.acknowledged_by || "someone"}, not resolved — ${duration(a.overdue_s)} past the re-alert time`
          : `not acknowledged — ${duration(a.overdue_s)} overdue`;
      li.append(
        make("span", { class: "overdue-what", testid: "overdue-rule" }, ruleLabel(a.rule)),
        make("span", { class: "overdue-where", testid: "overdue-where" }, where(view, a)),
        make("span", { class: "overdue-who" }, a.resident_name || ""),
        make("span", { class: "overdue-late", testid: "overdue-late" }, late),
        make("span", { class: "overdue-state" }, `opened ${stampText(a.opened_at)}`),
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
        cell(a.priority),
        cell(a.state === "acknowledged" ? `acknowledged by ${a.acknowledged_by || "?"}` : "open", "wrap"),
        cell(where(view, a)),
        cell(a.resident_name ? `${a.resident_name} (${a.resident_code})` : null, "wrap"),
        cell(stampText(a.opened_at)),
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
        cell(d.device),
        cell(d.profile),
        cell(where(view, d)),
        cell(d.offline ? d.offline_why : "online", d.offline ? "wrap below" : "muted"),
        cell(d.low_battery ? battery || "low" : battery, d.low_battery ? "below" : undefined),
        cell(stampText(d.last_seen)),
      );
      return tr;
    });
    el.devices.replaceChildren(...rows);
    el.devicesEmpty.hidden = rows.length > 0;
    const gateways = view.gateways_offline.map(
      (g) => `${g.gateway}${view.sites.length > 1 ? ` (${siteName(view, g.site)})` : ""} since ${stampText(g.since)}`,
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
    renderOverdue(view);
    renderAlerts(view);
    renderDevices(view);
    renderBeds(view);
    el.period.textContent = `${dateText(view.since)} to ${stampText(view.until)}`;
    el.updated.textContent = `Updated ${stampText(view.generated_at).slice(11)}`;
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
      if (err.status === 401) {
        showLogin("Your session has ended. Please sign in again.");
        return;
      }
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

  function showLogin(message) {
    clearTimeout(refreshTimer);
    me = null;
    el.loading.hidden = true;
    el.view.hidden = true;
    el.viewError.hidden = true;
    el.user.hidden = true;
    el.logout.hidden = true;
    el.updated.hidden = true;
    el.login.hidden = false;
    el.loginError.textContent = message || "";
    el.loginError.hidden = !message;
    el.loginSubmit.disabled = false;
    el.username.focus();
  }

  async function start(who) {
    me = who;
    el.loading.hidden = true;
    el.login.hidden = true;
    el.user.textContent = who.name && who.name !== who.user ? `${who.name} (${who.user})` : who.user;
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

  el.loginForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = el.username.value.trim();
    const password = el.password.value;
    if (!username || !password) {
      el.loginError.textContent = "Enter your user name and password.";
      el.loginError.hidden = false;
      return;
    }
    el.loginSubmit.disabled = true;
    el.loginError.hidden = true;
    try {
      const who = await api("POST", "/api/login", { username, password });
      el.password.value = "";
      await start(who);
    } catch (err) {
      el.loginError.textContent =
        err.status === 401 ? "Wrong user name or password." : err.message || "Sign-in failed.";
      el.loginError.hidden = false;
      el.loginSubmit.disabled = false;
      el.password.select();
    }
  });

  el.controls.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  el.controls.addEventListener("change", updateExportLinks);

  el.logout.addEventListener("click", async () => {
    try {
      await api("POST", "/api/logout");
    } catch (_) {
      /* signed out locally either way */
    }
    showLogin("");
  });

  async function boot() {
    try {
      await start(await api("GET", "/api/me"));
    } catch (err) {
      showLogin(err.status === 401 ? "" : err.message);
    }
  }

  boot();
})();
