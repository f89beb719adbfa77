// The POS tablet app at /pos (docs/pos.md): start-up, the catalog snapshot, the service worker, sign-out.
// Screens live in their modules: shift.js (registers, shifts, cash, close), sell.js (grid, scanner, tickets),
// pay.js (tenders, card reader, completing a sale), refund.js, net.js (status and sync), queue.js (offline queue).

import { refreshQueue, syncSoon, wireNet } from "./net.js";
import * as queue from "./queue.js";
import { wireRefund } from "./refund.js";
import { setCatalog, wireSell } from "./sell.js";
import { resume, wireShift } from "./shift.js";
import { forgetKeys, forgetTickets, loadLastOnline, reached, saveSession, state } from "./state.js";
import { all } from "./store.js";
import { $, $$, fill, toast } from "./ui.js";

// The catalog snapshot: from the network when it can be reached, else the service worker's copy.
async function loadCatalog() {
  let reply;
  try {
    reply = await fetch("/pos/api/catalog", { credentials: "same-origin", headers: { accept: "application/json" } });
  } catch {
    toast("The catalog is not on this tablet yet: connect to the network once to load it.", "error", 10_000);
    return false;
  }
  if (!reply.ok || reply.redirected) {
    toast(reply.redirected ? "You are signed out: sign in again." : `The catalog could not be loaded (${reply.status}).`, "error", 10_000);
    return false;
  }
  state.catalogCopy = reply.headers.get("x-till-offline-copy") === "1";
  if (!state.catalogCopy) reached();
  setCatalog(await reply.json());
  const note = $("[data-testid=catalog-note]");
  note.hidden = !state.catalogCopy;
  note.textContent = state.catalogCopy ? "Offline: prices and tax from the catalog saved on this tablet." : "";
  return true;
}

function registerWorker() {
  if (!("serviceWorker" in navigator)) {
    toast("This browser cannot keep the till working offline.", "error", 10_000);
    return;
  }
  const mark = () => {
    document.body.dataset.offlineReady = String(Boolean(navigator.serviceWorker.controller));
  };
  navigator.serviceWorker.addEventListener("controllerchange", mark);
  mark();
  navigator.serviceWorker.register("/pos/sw.js", { scope: "/pos" }).catch((error) => {
    toast(`Offline mode is not available: ${error.message}`, "error", 10_000);
  });
}

function wireDialogs() {
  for (const button of $$("dialog [data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
}

// Signing out takes the shift's key, the open tickets and the cached shell off the tablet; so it waits until the
// offline sales are sent (their key would go with it) and no ticket holds a payment.
function wireSignOut() {
  const form = $("[data-signout]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!state.online) return toast("Signing out needs the network. It is down.", "error");
    const waiting = (await queue.entries()).length;
    if (waiting) {
      return toast(`${waiting} offline sale${waiting === 1 ? " is" : "s are"} still on this tablet: sign out once sent (tap the status).`, "error", 8000);
    }
    if (state.tickets.some((t) => t.tenders.length || t.pending_card)) {
      return toast("A ticket has payments on it: finish or void it first.", "error");
    }
    for (const row of await all("keys")) await forgetKeys(row.shift_id);
    if (state.shift) await forgetTickets(state.shift.id);
    state.shift = null;
    await saveSession(); // the register stays chosen on this tablet
    for (const name of await caches.keys()) if (name.startsWith("till-pos-")) await caches.delete(name);
    form.elements._csrf_token.value = $('meta[name="csrf-token"]').content;
    form.submit();
  });
}

async function boot() {
  registerWorker();
  wireDialogs();
  await loadLastOnline();
  await wireNet();
  wireSell();
  wireShift();
  wireRefund();
  wireSignOut();
  await refreshQueue();
  await loadCatalog();
  document.addEventListener("pos:network", (event) => {
    if (event.detail.online) loadCatalog();
  });
  await resume();
  syncSoon();
  fill("queue-summary", "");
  document.body.dataset.ready = "true";
}

boot().catch((error) => {
  console.error(error);
  toast(`The till could not start: ${error.message}`, "error", 30_000);
});
