// carewatch roster view: who covers which zones now and on the next shift, and what reaches them.
// Plain JS, no framework. All data is inserted with textContent, never as HTML.
"use strict";

(() => {
  const REFRESH_S = 30;
  const STATUS_TEXT = {
    covered: "Covered",
    uncovered: "Nobody covers this zone",
    unreachable: "Nothing reaches the staff who cover it",
    unstaffed: "Not staffed (by design)",
  };

  // Exposed for tests: how many times the view was drawn, and the last document.
  const status = { renders: 0, view: null };
  window.carewatchRoster = status;

  const lib = window.carewatch;
  const { make, api, shortTime, dateTime } = lib;
  const $ = lib.byTestId;
  const el = {
    loading: $("loading"),
    login: $("login-panel"),
    view: $("roster"),
    viewError: $("view-error"),
    user: $("current-user"),
    logout: $("logout-button"),
    updated: $("updated"),
    sites: $("roster-sites"),
    pushLimit: $("push-limit"),
    supervisorLink: $("supervisor-link"),
  };

  let refreshTimer = null;

  // ---------------------------------------------------------------- words

  function cell(text, cls) {
    return make("td", { class: cls }, text === null || text === undefined ? "–" : text);
  }

  // "3 h", measured against the hub's own clock (the document's `at`), not the browser's.
  function since(view, at) {
    return lib.duration(view.at - at);
  }

  function names(site, users) {
    const byUser = Object.fromEntries(site.people.map((p) => [p.user, p.name]));
    return users.map((u) => byUser[u] || u);
  }

  function zoneNames(site, ids) {
    const byId = Object.fromEntries(site.now.zones.map((z) => [z.zone, z.name]));
    return ids.map((id) => byId[id] || id);
  }

  function shiftTitle(site, runs, when) {
    if (!runs.length) return when === "now" ? "Now: no shift is running" : "Next: no shift ahead";
    const parts = runs.map((r) => `${r.name} ${shortTime(r.start)}–${shortTime(r.end)}`);
    return `${when === "now" ? "Now" : "Next"}: ${parts.join(", ")}`;
  }

  function chargeText(site, runs) {
    const nurses = runs.filter((r) => r.charge_nurse).map((r) => r.charge_nurse);
    if (!nurses.length) return "No charge nurse on the roster.";
    return `Charge nurse: ${names(site, [...new Set(nurses)]).join(", ")}`;
  }

  function consoleText(person) {
    if (person.disabled) return "account disabled";
    const open = person.console.open;
    if (!open) return "not signed in";
    return open === 1 ? "signed in" : `signed in (${open} consoles)`;
  }

  function phoneText(view, person) {
    const push = person.push;
    switch (push.status) {
      case "none":
        return "no phone subscribed";
      case "confirmed":
        return `confirmed a push ${since(view, push.confirmed_at)} ago`;
      case "new":
        return `subscribed ${since(view, push.subscribed_at)} ago, no push confirmed yet`;
      case "failing":
        return `not reachable: the last push failed (${push.last_result || "no answer"})`;
      default: {
        const last = push.confirmed_at ?? push.subscribed_at;
        return `not reachable: no push confirmed for ${since(view, last)}`;
      }
    }
  }

  function dutyText(site, person) {
    return person.shifts
      .map((s) => {
        const where = s.charge_nurse ? "charge nurse" : s.zones ? zoneNames(site, s.zones).join(", ") : "whole site";
        return `${s.shift} (${s.when}): ${where}`;
      })
      .join("; ");
  }

  // ---------------------------------------------------------------- render

  function tile(id, n, label, bad) {
    const node = make("div", { class: "tile", testid: id, "data-level": n ? (bad ? "bad" : "warn") : "good" });
    node.append(make("span", { class: "tile-n" }, String(n)), make("span", { class: "tile-label" }, label));
    return node;
  }

  function zoneTable(site, zones, when) {
    const table = make("table", { class: "grid", testid: `zones-${when}` });
    const head = make("tr");
    head.append(
      make("th", { scope: "col" }, "Zone"),
      make("th", { scope: "col" }, "Covered by"),
      make("th", { scope: "col" }, when === "now" ? "Reachable now" : "Reachable now (for the next shift)"),
      make("th", { scope: "col" }, "Status"),
    );
    const body = make("tbody");
    for (const z of zones) {
      const tr = make("tr", { testid: "zone-row", "data-zone": z.zone, "data-status": z.status });
      const bad = z.status === "uncovered" || z.status === "unreachable";
      tr.append(
        cell(z.name),
        cell(
          z.covered_by.length ? names(site, z.covered_by).join(", ") : "nobody",
          z.covered_by.length ? "wrap" : z.status === "unstaffed" ? "muted" : "below",
        ),
        cell(z.reachable_by.length ? names(site, z.reachable_by).join(", ") : z.covered_by.length ? "nobody" : "–", "wrap"),
        make("td", { class: bad ? "below wrap" : z.status === "unstaffed" ? "muted" : "met", testid: "zone-status" }, STATUS_TEXT[z.status] || z.status),
      );
      body.append(tr);
    }
    table.append(make("thead"), body);
    table.tHead.append(head);
    return table;
  }

  function peopleTable(view, site) {
    const table = make("table", { class: "grid", testid: "people-table" });
    const head = make("tr");
    for (const title of ["Name", "On duty", "Console", "Phone", "Reached by"]) {
      head.append(make("th", { scope: "col" }, title));
    }
    const body = make("tbody");
    for (const p of site.people) {
      const tr = make("tr", { testid: "person-row", "data-user": p.user, "data-reachable": p.reachable });
      const reached = p.channels.length ? p.channels.map((c) => (c === "push" ? "phone" : c)).join(", ") : "NOTHING";
      tr.append(
        cell(p.name, "wrap"),
        cell(dutyText(site, p), "wrap"),
        make("td", { class: p.console.reachable ? "" : "muted", testid: "person-console" }, consoleText(p)),
        make(
          "td",
          { class: p.push.reachable ? "wrap" : p.push.status === "none" ? "wrap muted" : "wrap below", testid: "person-phone" },
          phoneText(view, p),
        ),
        make("td", { class: p.reachable ? "met" : "below", testid: "person-reached" }, reached),
      );
      body.append(tr);
      if (p.problems.length) {
        const note = make("tr", { class: "problems", testid: "person-problems", "data-user": p.user });
        note.append(make("td", { colspan: 5 }, `${p.name}: ${p.problems.join("; ")}`));
        body.append(note);
      }
    }
    table.append(make("thead"), body);
    table.tHead.append(head);
    return table;
  }

  function renderSite(view, site) {
    const section = make("section", { class: "panel roster-site", testid: "roster-site", "data-site": site.site });
    section.append(make("div", { class: "panel-head" }));
    section.firstChild.append(make("h2", {}, site.name));
    if (!site.rostered) {
      section.append(
        make("p", { class: "gateways", testid: "no-roster" }, "This site has no roster: nobody is on duty, so every escalation reaches nobody."),
      );
    }
    const unreachablePeople = site.unreachable_people.length;
    const tiles = make("div", { class: "tiles" });
    tiles.append(
      tile("tile-uncovered-now", site.uncovered_now.length, "zones nobody covers now", true),
      tile("tile-unreachable-now", site.unreachable_now.length, "zones whose staff nothing reaches", true),
      tile("tile-uncovered-next", site.uncovered_next.length, "zones nobody covers next shift", false),
      tile("tile-unreachable-people", unreachablePeople, "people nothing reaches now", false),
    );
    section.append(tiles);

    section.append(make("h3", { testid: "now-title" }, shiftTitle(site, site.now.shifts, "now")));
    section.append(make("p", { class: "hint" }, chargeText(site, site.now.shifts)));
    section.append(make("div", { class: "scroll" }));
    section.lastChild.append(zoneTable(site, site.now.zones, "now"));

    const nextTitle = site.next.at
      ? `${shiftTitle(site, site.next.shifts, "next")} (from ${dateTime(site.next.at)})`
      : shiftTitle(site, site.next.shifts, "next");
    section.append(make("h3", { testid: "next-title" }, nextTitle));
    section.append(make("p", { class: "hint" }, chargeText(site, site.next.shifts)));
    section.append(make("div", { class: "scroll" }));
    section.lastChild.append(zoneTable(site, site.next.zones, "next"));

    section.append(make("h3", {}, "People and what reaches them"));
    if (site.people.length) {
      section.append(make("div", { class: "scroll" }));
      section.lastChild.append(peopleTable(view, site));
    } else {
      section.append(make("p", { class: "empty" }, "Nobody is on the roster for now or the next shift."));
    }
    return section;
  }

  function render(view) {
    status.view = view;
    el.pushLimit.textContent = String(view.push_confirm_within_h);
    el.sites.replaceChildren(...view.sites.map((site) => renderSite(view, site)));
    if (!view.sites.length) el.sites.append(make("p", { class: "empty" }, "No site to show."));
    el.updated.textContent = `Updated ${lib.clockTime(view.at)}`;
    el.updated.hidden = false;
    status.renders += 1;
  }

  // ------------------------------------------------------------------ flow

  async function load() {
    clearTimeout(refreshTimer);
    try {
      const view = await api("GET", "/api/roster");
      el.viewError.hidden = true;
      render(view);
    } catch (err) {
      if (err.status === 401) return; // the session has ended: the sign-in form is back
      el.viewError.textContent =
        err.status === 403 ? "Only supervisors and the roster's charge nurses can see the roster." : err.message;
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
    el.supervisorLink.hidden = true;
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
    el.supervisorLink.hidden = !who.permissions.includes("figures.read");
    el.view.hidden = false;
    await load();
  }

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
