// The POS service worker (served as /pos/sw.js, scope /pos): keeps the tablet app usable with no network.
//
// It caches the shell (/pos), its scripts and styles, product images and the catalog snapshot
// (GET /pos/api/catalog: prices, tax rules, offline limits). Pages and the catalog go network first — online the
// tablet always sees today's prices and code — and fall back to the cached copy when the network is gone
// (answers from the cache carry `x-till-offline-copy: 1`). Images go cache first. Nothing else is touched: sales,
// sync and card payments always go to the network, and the page decides what to do when they cannot.

const CACHE = "till-pos-v4";
const SHELL = "/pos";
const CATALOG = "/pos/api/catalog";
const ASSETS = [
  "/static/pos/pos.css",
  "/static/pos/api.js",
  "/static/pos/canonical.js",
  "/static/pos/crypto.js",
  "/static/pos/money.js",
  "/static/pos/net.js",
  "/static/pos/pay.js",
  "/static/pos/pos.js",
  "/static/pos/queue.js",
  "/static/pos/refund.js",
  "/static/pos/sell.js",
  "/static/pos/shift.js",
  "/static/pos/state.js",
  "/static/pos/store.js",
  "/static/pos/ui.js",
  "/static/pos/voids.js",
];
const NETWORK_WAIT_MS = 5000;

async function fetchAndKeep(cache, request, key) {
  const reply = await fetch(request, { signal: AbortSignal.timeout(NETWORK_WAIT_MS) });
  if (reply.ok && reply.type === "basic" && !reply.redirected) await cache.put(key, reply.clone());
  return reply;
}

async function offlineCopy(key) {
  const cached = await caches.match(key, { ignoreSearch: true });
  if (!cached) return null;
  const headers = new Headers(cached.headers);
  headers.set("x-till-offline-copy", "1");
  return new Response(await cached.blob(), { status: cached.status, statusText: cached.statusText, headers });
}

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  try {
    return await fetchAndKeep(cache, request, key);
  } catch (error) {
    const copy = await offlineCopy(key);
    if (copy) return copy;
    throw error;
  }
}

async function cacheFirst(request) {
  const cached = await caches.match(request);
  if (cached) return cached;
  return fetchAndKeep(await caches.open(CACHE), request, request);
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // Each on its own: one missing file must not keep the rest from being cached.
      await Promise.all(
        [SHELL, CATALOG, ...ASSETS].map((url) =>
          fetchAndKeep(cache, new Request(url, { credentials: "same-origin", cache: "no-store" }), url).catch(
            () => null,
          ),
        ),
      );
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (name.startsWith("till-pos-") && name !== CACHE) await caches.delete(name);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === "/pos" || url.pathname === "/pos/") {
    event.respondWith(networkFirst(request, SHELL));
  } else if (url.pathname === CATALOG) {
    event.respondWith(networkFirst(request, CATALOG));
  } else if (url.pathname.startsWith("/static/pos/") || url.pathname === "/static/css/till.css") {
    event.respondWith(networkFirst(request, url.pathname));
  } else if (url.pathname.startsWith("/static/img/")) {
    event.respondWith(cacheFirst(request));
  }
});
