// carewatch app (family and staff phones): the service worker. It shows pushed alerts as
// notifications, confirms each one to the hub (so that the roster knows this phone still
// receives), sends their buttons to the hub — staff: "I'm going" / "I can't"; family: "I've seen
// it", "Send someone", "I'm handling it" — and keeps the app shell for an offline start.
// Registered at /sw.js with the scope /family, so it never controls the staff console.
"use strict";

const SHELL_CACHE = "carewatch-family-shell-v4";
const SHELL = [
  "/family",
  "/static/common.js",
  "/family/static/family.js",
  "/family/static/family.css",
  "/family/static/icon-192.png",
  "/family.webmanifest",
];
// The hub says which buttons a push carries (`actions`, by the recipient's role); a push from an
// older hub has none listed and gets the family's.
const DEFAULT_ACTIONS = [
  { action: "seen", title: "I've seen it" },
  { action: "send_someone", title: "Send someone" },
];
const KNOWN_ACTIONS = new Set(["acknowledge", "decline", "seen", "handling", "send_someone"]);
const STAY_ON_SCREEN = new Set(["emergency", "urgent"]);

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(SHELL_CACHE)
      .then((cache) => cache.addAll(SHELL))
      .catch(() => undefined) // no cache is no reason to refuse to show alerts
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      // the origin's caches are shared with the staff pages' worker (/staff-sw.js): only this
      // app's older shells go
      .then((names) =>
        Promise.all(names.filter((n) => n.startsWith("carewatch-family-") && n !== SHELL_CACHE).map((n) => caches.delete(n))),
      )
      .then(() => self.clients.claim()),
  );
});

// The shell: network first, so an update shows at once; the cached copy when offline.
// API calls are never cached: stale data about a person is worse than none.
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!SHELL.includes(url.pathname)) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(SHELL_CACHE).then((cache) => cache.put(url.pathname, copy));
        }
        return response;
      })
      .catch(() => caches.match(url.pathname).then((cached) => cached || Response.error())),
  );
});

// --------------------------------------------------------------------- showing an alert

function readPush(data) {
  if (!data) return { title: "carewatch", body: "Open the app to see what happened." };
  try {
    return data.json();
  } catch {
    return { title: "carewatch", body: data.text() };
  }
}

async function showAlert(payload) {
  const options = {
    body: payload.body || "",
    tag: `alert-${payload.alert_id}`,
    renotify: true,
    requireInteraction: STAY_ON_SCREEN.has(payload.priority),
    data: payload,
    icon: "/family/static/icon-192.png",
    badge: "/family/static/icon-192.png",
    timestamp: payload.opened_at ? payload.opened_at * 1000 : Date.now(),
    actions: payload.action_token ? pushActions(payload) : [],
  };
  await self.registration.showNotification(payload.title || "carewatch alert", options);
  const receipt = payload.action_token ? await confirmReceipt(payload) : null;
  await tellApp({ type: "push", alert_id: payload.alert_id, received: receipt });
}

function pushActions(payload) {
  const listed = Array.isArray(payload.actions) ? payload.actions : DEFAULT_ACTIONS;
  return listed
    .filter((a) => a && KNOWN_ACTIONS.has(a.action) && typeof a.title === "string")
    .map((a) => ({ action: a.action, title: a.title }));
}

// Tell the hub this phone received the push (action "received", the push's own token, which
// names the subscription): the roster shows a phone that stops confirming as not reachable.
// A receipt that cannot be sent changes nothing on the phone.
async function confirmReceipt(payload) {
  let endpoint = null;
  try {
    const subscription = await self.registration.pushManager.getSubscription();
    endpoint = subscription ? subscription.endpoint : null;
  } catch {
    endpoint = null;
  }
  try {
    const response = await fetch("/api/push/action", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: payload.action_token, action: "received", endpoint }),
      credentials: "omit",
    });
    return { ok: response.ok, status: response.status };
  } catch (error) {
    return { ok: false, status: 0, detail: String(error) };
  }
}

self.addEventListener("push", (event) => {
  event.waitUntil(showAlert(readPush(event.data)));
});

async function tellApp(message) {
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) client.postMessage(message);
}

// --------------------------------------------------------------------- acting on it

// The action token that came with the push is the credential: no session is needed, so the
// buttons work from a locked phone whose app session has ended.
async function sendAction(notification, action) {
  const data = notification.data || {};
  let result;
  try {
    const response = await fetch("/api/push/action", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: data.action_token, action }),
      credentials: "omit",
    });
    const body = await response.json().catch(() => ({}));
    result = { ok: response.ok, status: response.status, detail: body.detail || null };
  } catch (error) {
    result = { ok: false, status: 0, detail: String(error) };
  }
  notification.close();
  if (!result.ok) {
    // Say so on the phone: the relative must know their answer did not arrive.
    await self.registration.showNotification("Your answer did not reach the care service", {
      body: `${result.detail || "No connection."} Open the app or call the care service.`,
      tag: `alert-${data.alert_id}-failed`,
      data: { url: data.url || "/family" },
      icon: "/family/static/icon-192.png",
    });
  }
  await tellApp({ type: "action", action, alert_id: data.alert_id, ...result });
  return result;
}

async function openApp(url) {
  const target = new URL(url || "/family", self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = windows.find((client) => new URL(client.url).pathname === "/family");
  if (open) {
    await open.focus();
    return open.navigate ? open.navigate(target) : open;
  }
  return self.clients.openWindow(target);
}

// One handler for a tap on a notification or on one of its buttons.
async function onNotificationClick(notification, action) {
  if (KNOWN_ACTIONS.has(action)) return sendAction(notification, action);
  notification.close();
  await openApp((notification.data || {}).url);
  return { ok: true, opened: true };
}

self.addEventListener("notificationclick", (event) => {
  event.waitUntil(onNotificationClick(event.notification, event.action));
});

// A page of the app may ask for a shown notification's button to be pressed for it (the
// notification list on a phone that hides buttons; automated tests, which cannot press the
// system's buttons). The same handler runs; the result goes back on the message's port.
self.addEventListener("message", (event) => {
  const request = event.data || {};
  if (request.type !== "notification-action") return;
  const reply = (result) => event.ports[0] && event.ports[0].postMessage(result);
  event.waitUntil(
    self.registration.getNotifications({ tag: request.tag }).then(async (shown) => {
      if (!shown.length) {
        reply({ ok: false, status: 0, detail: "no such notification" });
        return;
      }
      reply(await onNotificationClick(shown[0], request.action));
    }),
  );
});
