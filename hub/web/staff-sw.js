// carewatch staff pages: the service worker that keeps the staff console's and the installer
// page's shells (page, scripts, styles) for a start while the hub cannot be reached. Each page
// then shows what it last knew, from its own storage, under a banner saying that new alerts are
// not reaching the screen. Registered at /staff-sw.js with the scope "/"; the family app keeps
// its own worker (/sw.js, scope /family), which wins there as the longer scope.
"use strict";

const SHELL_CACHE = "carewatch-staff-shell-v1";
const SHELL = [
  // the staff console
  "/",
  "/static/common.js",
  "/static/console.js",
  "/static/console.css",
  "/static/console/console_views.js",
  "/static/console/console_board.css",
  // the installer's page
  "/installer",
  "/installer/installer.js",
  "/installer/installer.css",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(SHELL_CACHE)
      // one file at a time: a file missing from an older hub must not keep the others out
      .then((cache) => Promise.all(SHELL.map((path) => cache.add(path).catch(() => undefined))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) =>
        Promise.all(names.filter((n) => n.startsWith("carewatch-staff-") && n !== SHELL_CACHE).map((n) => caches.delete(n))),
      )
      .then(() => self.clients.claim()),
  );
});

// The shell only: network first, so an update shows at once; the cached copy when the hub
// cannot be reached. Nothing else is touched — the API (/api/…) never goes through a cache:
// an old answer about a person would be taken for a current one.
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (!SHELL.includes(url.pathname)) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.put(url.pathname, copy)));
        }
        return response;
      })
      .catch(() => caches.match(url.pathname).then((cached) => cached || Response.error())),
  );
});
