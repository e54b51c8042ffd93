// carewatch family app: the service worker. It shows pushed alerts as notifications, sends their
// Acknowledge / Send someone buttons to the hub, and keeps the app shell for an offline start.
// Registered at /sw.js with the scope /family, so it never controls the staff console.
"use strict";

const SHELL_CACHE = "carewatch-family-shell-v2";
const SHELL = [
  "/family",
  "/static/common.js",
  "/family/static/family.js",
  "/family/static/family.css",
  "/family/static/icon-192.png",
  "/family.webmanifest",
];
const ACTIONS = [
  { action: "acknowledge", title: "Acknowledge" },
  { action: "send_someone", title: "Send someone" },
];
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
      .then((names) => Promise.all(names.filter((n) => n !== SHELL_CACHE).map((n) => caches.delete(n))))
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
    actions: payload.action_token ? ACTIONS : [],
  };
  await self.registration.showNotification(payload.title || "carewatch alert", options);
  await tellApp({ type: "push", alert_id: payload.alert_id });
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
  if (ACTIONS.some((known) => known.action === action)) return sendAction(notification, action);
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
