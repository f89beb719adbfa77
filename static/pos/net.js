// Online / offline / syncing, always on screen with the queue's depth, and the sync of the offline queue.
//
// The tablet is offline when a call cannot reach the server (or the browser says so); it then asks /health
// every few seconds and is online again at the first answer. Going online starts a sync: oldest sales first,
// in batches (queue.js); sent ones leave the queue, sales the server put on the review list leave a note,
// refused ones stay, marked, until someone retries them.

import { ApiError, api, onReached, onUnreachable } from "./api.js";
import * as queue from "./queue.js";
import { keysFor, lostCodeWords, money, reached, state } from "./state.js";
import { get, put } from "./store.js";
import { $, dialog, fill, h, openDialog, toast } from "./ui.js";
import { sendVoids } from "./voids.js";

const PROBE_MS = 5000;
const RESYNC_MS = 30_000;
let probing = null;
let soon = null;

const LABELS = { online: "Online", offline: "Offline", syncing: "Syncing" };

export function renderStatus() {
  const el = $("[data-testid=net-status]");
  const mode = state.syncing ? "syncing" : state.online ? "online" : "offline";
  el.dataset.state = mode;
  el.classList.toggle("attention", state.queue.refused > 0);
  $("[data-testid=net-text]").textContent = LABELS[mode];
  $("[data-testid=queue-depth]").textContent = String(state.queue.depth);
  document.body.dataset.net = mode;
}

export async function refreshQueue() {
  const entries = await queue.entries();
  state.queue = { depth: entries.length, refused: entries.filter((e) => e.status === "refused").length };
  renderStatus();
  if (dialog("queue").open) await renderQueueDialog(entries);
}

function setOnline(value) {
  if (state.online === value) return;
  state.online = value;
  renderStatus();
  document.dispatchEvent(new CustomEvent("pos:network", { detail: { online: value } }));
  if (value) {
    clearInterval(probing);
    probing = null;
    syncSoon();
  } else {
    if (state.lastOnlineAt) put("meta", state.lastOnlineAt, "last-online");
    probing ??= setInterval(probe, PROBE_MS);
  }
}

async function probe() {
  if (!navigator.onLine) return;
  try {
    const reply = await fetch("/health", { cache: "no-store", signal: AbortSignal.timeout(4000) });
    if (reply.ok) {
      reached();
      setOnline(true);
    }
  } catch {
    // still offline
  }
}

export function syncSoon() {
  clearTimeout(soon);
  soon = setTimeout(syncNow, 300);
}

export async function syncNow() {
  if (state.syncing || !state.online) return;
  await sendVoids().catch((error) => console.error("sending voids", error));
  const pending = (await queue.entries()).filter((e) => e.status === "pending");
  if (!pending.length) return refreshQueue();
  state.syncing = true;
  renderStatus();
  try {
    const run = () =>
      queue.sync({
        keysFor,
        post: (body) => api("POST", "/pos/api/sync", body, { timeoutMs: 60_000 }),
        onProgress: () => refreshQueue(),
      });
    const outcome = navigator.locks ? await navigator.locks.request("till-pos-sync", run) : await run();
    await report(outcome);
  } catch (error) {
    if (error instanceof ApiError) toast(`Sending offline sales: ${error.message}`, "error", 8000);
  } finally {
    state.syncing = false;
    await refreshQueue();
  }
}

async function report(outcome) {
  const sent = outcome.created + outcome.existing;
  if (sent) toast(`${sent} offline sale${sent === 1 ? "" : "s"} sent to Till.`, "ok");
  // A sale Till had recorded already (its answer lost) that sold gift cards: their codes never reached this tablet.
  const lost = outcome.lostCodes ?? [];
  if (lost.length) {
    for (const r of lost) {
      for (const card of r.gift_cards) {
        state.notes.push({ at: Date.now(), text: `Sale ${r.sequence} is order #${r.order_number}, recorded before the network dropped. ${lostCodeWords(card)}` });
      }
    }
    await put("meta", state.notes, "notes");
    toast(`A gift card sold before the network dropped is active, but its code never reached this tablet: a manager replaces the card on the staff page. Tap the status for the card.`, "warn", 15_000);
  }
  if (outcome.review.length) {
    for (const r of outcome.review) {
      state.notes.push({
        at: Date.now(),
        text: `Offline sale ${r.sequence} (${money(r.total_minor)}) is order #${r.order_number} and is on the managers' review list${r.reason ? `: ${r.reason}` : "."}`,
      });
    }
    await put("meta", state.notes, "notes");
    toast(`${outcome.review.length} offline sale${outcome.review.length === 1 ? " needs" : "s need"} a manager's review. Tap the status to see why.`, "warn", 10_000);
  }
  if (outcome.refused.length) {
    toast(`${outcome.refused.length} offline sale${outcome.refused.length === 1 ? " was" : "s were"} refused. Tap the status to see why.`, "error", 10_000);
  }
}

// --- the queue dialog (tap the status) ---------------------------------------------------------------------------
const time = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

async function renderQueueDialog(entries) {
  const rows = [];
  let total = 0;
  for (const entry of entries) {
    const keys = await keysFor(entry.shift_id);
    const sale = keys ? await queue.readSale(keys, entry).catch(() => null) : null;
    if (sale) total += sale.total_minor;
    rows.push(
      h(
        "li",
        { class: `queued ${entry.status}` },
        h("strong", {}, `Sale ${entry.sequence}`),
        h("span", {}, sale ? `${money(sale.total_minor)} · ${time(Date.parse(sale.sold_at))}` : "unreadable"),
        h("span", { class: "state" }, entry.status === "refused" ? `Refused: ${entry.reason}` : "Waiting"),
        entry.status === "refused"
          ? h(
              "span",
              { class: "row" },
              h(
                "button",
                {
                  type: "button",
                  class: "button small",
                  onclick: async () => {
                    await queue.retry(entry.client_sale_id);
                    await refreshQueue();
                    syncNow();
                  },
                },
                "Try again",
              ),
              h(
                "button",
                {
                  type: "button",
                  class: "button small danger-ghost",
                  onclick: async () => {
                    const sure = window.confirm(
                      `Remove sale ${entry.sequence} from this tablet? Till refused it and keeps a record of that; ` +
                        "the sale itself is not recorded. Tell a manager.",
                    );
                    if (!sure) return;
                    await queue.remove(entry.client_sale_id);
                    await refreshQueue();
                  },
                },
                "Remove",
              ),
            )
          : null,
      ),
    );
  }
  $("[data-testid=queue-list]").replaceChildren(...rows);
  const since = state.lastOnlineAt ? ` Last reached Till at ${time(state.lastOnlineAt)}.` : "";
  const refused = entries.filter((e) => e.status === "refused").length;
  const pending = entries.length - refused;
  const waiting = [
    pending
      ? `${pending} sale${pending === 1 ? "" : "s"} on this tablet, encrypted, waiting to be sent.`
      : "No sales waiting on this tablet.",
    refused ? `${refused} refused by Till: see why below.` : "",
    entries.length ? `Total ${money(total)}.` : "",
  ]
    .filter(Boolean)
    .join(" ");
  fill(
    "queue-summary",
    state.online ? `Online. ${waiting}` : `Offline: sales are kept on this tablet and sent when the network is back.${since} ${waiting}`,
  );
  $("[data-testid=queue-notes]").replaceChildren(...state.notes.map((n) => h("li", {}, `${time(n.at)} — ${n.text}`)));
}

export async function wireNet() {
  state.notes = (await get("meta", "notes")) ?? [];
  onReached(() => {
    reached();
    setOnline(true);
  });
  onUnreachable(() => setOnline(false));
  window.addEventListener("offline", () => setOnline(false));
  window.addEventListener("online", probe);
  if (!state.online) probing ??= setInterval(probe, PROBE_MS);
  setInterval(() => {
    if (state.online && state.queue.depth > state.queue.refused) syncNow();
  }, RESYNC_MS);
  $("[data-action=queue]").addEventListener("click", async () => {
    openDialog("queue");
    await refreshQueue();
    await renderQueueDialog(await queue.entries());
  });
  $("[data-action=sync-now]").addEventListener("click", async () => {
    if (!state.online) await probe();
    if (!state.online) return toast("Still offline: the sales wait on this tablet.", "error");
    await syncNow();
  });
  $("[data-action=clear-notes]").addEventListener("click", async () => {
    state.notes = [];
    await put("meta", [], "notes");
    await refreshQueue();
    await renderQueueDialog(await queue.entries());
  });
  renderStatus();
}
