// JSON calls to /pos/api/… with the staff session and the CSRF token (docs/pos.md, "The POS API").
// A call that cannot reach the server throws NetworkError (the tablet is offline); one the server answered
// with an error throws ApiError carrying its problem+json (detail and per-field reasons).

export class NetworkError extends Error {}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `The server answered ${status}.`);
    this.status = status;
    this.problem = problem ?? {};
    this.fields = this.problem.fields ?? {};
  }
}

const listeners = { reached: [], unreachable: [] };
export const onReached = (fn) => listeners.reached.push(fn);
export const onUnreachable = (fn) => listeners.unreachable.push(fn);

const token = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

// The shell may come from the service worker's cache with an older token; fetch the page afresh for the one
// that matches today's cookie.
async function refreshToken() {
  const reply = await fetch("/pos", { cache: "no-store", credentials: "same-origin" });
  if (!reply.ok) return false;
  const html = await reply.text();
  const fresh = new DOMParser().parseFromString(html, "text/html").querySelector('meta[name="csrf-token"]');
  if (!fresh) return false;
  document.querySelector('meta[name="csrf-token"]').content = fresh.content;
  return true;
}

export async function api(method, path, body, { idempotencyKey, timeoutMs = 15_000, retried = false } = {}) {
  const headers = { accept: "application/json, application/problem+json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET") headers["x-csrftoken"] = token();
  if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
  let reply;
  try {
    reply = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    for (const fn of listeners.unreachable) fn(error);
    throw new NetworkError("Till cannot be reached.");
  }
  if (reply.headers.get("x-till-offline-copy") !== "1") for (const fn of listeners.reached) fn();
  const text = await reply.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (reply.ok) return data;
  if (reply.status === 403 && !retried && /csrf/i.test(data?.detail ?? "") && (await refreshToken())) {
    return api(method, path, body, { idempotencyKey, timeoutMs, retried: true });
  }
  if (reply.status === 401 || (reply.redirected && new URL(reply.url).pathname === "/signin")) {
    throw new ApiError(401, { detail: "You are signed out. Sign in again to go on selling online." });
  }
  throw new ApiError(reply.status, data);
}
