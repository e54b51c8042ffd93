// carewatch pages, what they share: DOM building, calls to the hub with the session's CSRF token,
// sign-in and session end, time and duration text, the staff's names for rules and outcomes.
// Plain JS, no build step: each page loads /static/common.js before its own script and finds
// everything on window.carewatch. All text is inserted with textContent, never as HTML.
"use strict";

(() => {
  const SESSION_ENDED = "Your session has ended. Please sign in again.";
  const UNREACHABLE = "Cannot reach the hub. Check the network and try again.";
  // The 401 of these calls means "not signed in (yet)", not "the session has ended".
  const SIGN_IN_PATHS = new Set(["/api/login", "/api/me"]);
  const RULE_LABELS = {
    fall: "Fall",
    call_button: "Call button",
    smoke: "Smoke alarm",
    stillness: "No movement",
    inactivity: "No movement",
    tamper: "Device tampered with",
    device_test: "Device test",
    bed_exit: "Not back in bed",
    not_up: "Not up yet",
    prolonged_stay: "Long stay in the bathroom",
    door_at_night: "Door opened at night",
    vital_signs: "Vital signs",
    device_offline: "Device offline",
    gateway_offline: "Gateway offline",
    hub_takeover: "Hub connection taken over",
    low_battery: "Low battery",
    zone_uncovered: "Nobody on duty covers this zone",
    zone_unwatched: "No console watching",
  };

  // ---------------------------------------------------------------- DOM

  const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

  // Attributes null, undefined or false are left out, true is an empty attribute; "testid"
  // sets data-testid.
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

  // ---------------------------------------------------------------- time

  const pad = (n) => String(n).padStart(2, "0");

  function dateText(epochS) {
    const d = new Date(epochS * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  function shortTime(epochS) {
    const d = new Date(epochS * 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function clockTime(epochS) {
    return `${shortTime(epochS)}:${pad(new Date(epochS * 1000).getSeconds())}`;
  }

  // The date in full, for tables and exports; null stays null.
  function dateTime(epochS) {
    if (epochS === null || epochS === undefined) return null;
    return `${dateText(epochS)} ${clockTime(epochS)}`;
  }

  // Nothing for today, "yesterday " or the date (as `formatDate` writes it) before a time.
  function dayPrefix(epochS, formatDate = dateText) {
    const d = new Date(epochS * 1000);
    const today = new Date();
    if (d.toDateString() === today.toDateString()) return "";
    const yesterday = new Date(today);
    yesterday.setDate(today.getDate() - 1);
    if (d.toDateString() === yesterday.toDateString()) return "yesterday ";
    return `${formatDate(epochS)} `;
  }

  function stampText(epochS) {
    return dayPrefix(epochS) + clockTime(epochS);
  }

  // "40 min", "2 h 5 min"; with `precise` the seconds under ten minutes too ("1 min 40 s"),
  // for response times. null stays null.
  function duration(seconds, precise = false) {
    if (seconds === null || seconds === undefined) return null;
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return precise && s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
    return `${Math.floor(h / 24)} days`;
  }

  function ago(epochS) {
    const s = Date.now() / 1000 - epochS;
    if (s < 10) return "just now";
    return `${duration(s)} ago`;
  }

  // ---------------------------------------------------------------- the hub's API

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  let me = null; // the signed-in user as /api/me and /api/login answer: {user, name, role, csrf_token, ...}
  let sessionEnded = () => undefined;

  // `handler(message)` runs when a call answers 401: the session has ended (expired, or
  // signed out elsewhere). The page shows its sign-in form with the message.
  function onSessionEnded(handler) {
    sessionEnded = handler;
  }

  // A JSON call. Resolves to the answer's JSON; rejects with an ApiError whose status is 0
  // when the hub cannot be reached and whose message is the hub's `detail` when it has one.
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
      throw new ApiError(0, UNREACHABLE);
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
      if (response.status === 401) {
        me = null;
        if (!SIGN_IN_PATHS.has(path)) sessionEnded(SESSION_ENDED);
      }
      throw new ApiError(response.status, detail);
    }
    return data;
  }

  // ---------------------------------------------------------------- session

  async function whoAmI() {
    me = await api("GET", "/api/me");
    return me;
  }

  async function signIn(username, password) {
    me = await api("POST", "/api/login", { username, password });
    return me;
  }

  async function signOut() {
    try {
      await api("POST", "/api/logout");
    } catch (_) {
      /* signed out locally either way */
    }
    me = null;
  }

  // "Night Nurse (nurse)", or the user name alone when that is all there is.
  function userLabel(who) {
    return who.name && who.name !== who.user ? `${who.name} (${who.user})` : who.user;
  }

  function signInError(err, unreachable) {
    if (err.status === 401) return "Wrong user name or password.";
    if (err.status === 429) return "Too many tries. Wait a few minutes and try again.";
    if (err.status === 0) return unreachable;
    return err.message || "Sign-in failed.";
  }

  const LOGIN_TESTIDS = {
    form: "login-form",
    username: "login-username",
    password: "login-password",
    error: "login-error",
    submit: "login-submit",
  };

  // Wires the page's sign-in form, found by the data-testids of LOGIN_TESTIDS and `testids`
  // (the page's own names, if any). A good sign-in calls `onSignedIn(who)`. `unreachable` is
  // what to say when the hub cannot be reached, in the page's words. Returns reset(message)
  // and focus() for the page's own "show the sign-in form".
  function loginForm(onSignedIn, { testids = {}, unreachable = UNREACHABLE } = {}) {
    const parts = {};
    for (const [part, id] of Object.entries({ ...LOGIN_TESTIDS, ...testids })) parts[part] = byTestId(id);
    const showError = (message) => {
      parts.error.textContent = message || "";
      parts.error.hidden = !message;
    };
    parts.form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const username = parts.username.value.trim();
      const password = parts.password.value;
      if (!username || !password) {
        showError("Enter your user name and password.");
        return;
      }
      parts.submit.disabled = true;
      showError("");
      try {
        const who = await signIn(username, password);
        parts.password.value = "";
        await onSignedIn(who);
      } catch (err) {
        showError(signInError(err, unreachable));
        parts.password.select();
      } finally {
        parts.submit.disabled = false;
      }
    });
    return {
      reset(message) {
        showError(message);
        parts.submit.disabled = false;
        parts.password.value = "";
      },
      focus() {
        (parts.username.value ? parts.password : parts.username).focus();
      },
    };
  }

  // ---------------------------------------------------------------- staff vocabulary

  let outcomes = {}; // code -> label, from /api/outcomes

  async function loadOutcomes() {
    outcomes = await api("GET", "/api/outcomes");
    return outcomes;
  }

  function outcomeLabel(code) {
    return outcomes[code] || String(code || "").replace(/_/g, " ");
  }

  function ruleLabel(rule) {
    if (RULE_LABELS[rule]) return RULE_LABELS[rule];
    const words = String(rule || "alert").replace(/[_-]+/g, " ").trim();
    return words.charAt(0).toUpperCase() + words.slice(1);
  }

  // ---------------------------------------------------------------- kept in this browser

  // What a page keeps for a start without the hub (the last alerts, the last walk test), as
  // JSON in localStorage. Storage refused or full (private mode) only means nothing is kept.
  function keep(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
    } catch (_) {
      /* the page works on without it */
    }
  }

  function kept(key) {
    try {
      return JSON.parse(localStorage.getItem(key) || "null");
    } catch (_) {
      return null;
    }
  }

  function forgetKept(key) {
    try {
      localStorage.removeItem(key);
    } catch (_) {
      /* nothing was kept */
    }
  }

  window.carewatch = Object.freeze({
    byTestId,
    make,
    pad,
    dateText,
    shortTime,
    clockTime,
    dateTime,
    dayPrefix,
    stampText,
    duration,
    ago,
    api,
    onSessionEnded,
    whoAmI,
    signOut,
    me: () => me,
    userLabel,
    loginForm,
    loadOutcomes,
    outcomes: () => outcomes,
    outcomeLabel,
    ruleLabel,
    keep,
    kept,
    forgetKept,
  });
})();
