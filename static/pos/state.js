// What the tablet knows right now, and the bits of it kept in IndexedDB so a reload (offline too) resumes.

import { decryptJSON, encryptJSON } from "./crypto.js";
import { formatMoney } from "./money.js";
import { del, get, put } from "./store.js";

const body = document.body;

export const state = {
  me: { id: body.dataset.userId, name: body.dataset.user, role: body.dataset.role },
  currency: body.dataset.currency,
  catalog: null, // GET /pos/api/catalog
  catalogCopy: false, // true when it came from the service worker's cache (offline)
  registers: [],
  register: null, // {id, name, reader}
  shift: null, // the open shift, without its offline_key
  keys: null, // {aes, hmac} CryptoKeys of the open shift
  tickets: [],
  current: 0,
  online: navigator.onLine,
  syncing: false,
  queue: { depth: 0, refused: 0 },
  lastOnlineAt: null, // ms: the last answer from the server (offline hours are counted from it)
  notes: [], // review notes from sync results
};

export const money = (minor, currency = state.currency) => formatMoney(minor, currency);

// A gift card Till activated on a try of a sale whose answer never reached this tablet: its code was seen by
// nobody and cannot be shown again, so a manager replaces the card (staff page; app/stored_value/services.py).
export const lostCodeWords = (c) =>
  `Gift card •••• ${c.last4} (${money(c.amount_minor)}) is active, but its code never reached this tablet and Till cannot show it again. ` +
  `Ask a manager to replace it on the staff page (Gift cards → •••• ${c.last4} → Replace card) and give the customer the new code.`;
export const uuid = () => crypto.randomUUID();

export function newTicket() {
  state.ticketNo = (state.ticketNo ?? 0) + 1;
  return {
    no: state.ticketNo,
    id: uuid(), // the sale's client_sale_id: card payments at the reader carry it too
    lines: [],
    ticket_discount_minor: 0,
    manager_pin: null,
    customer: null,
    tenders: [],
    pending_card: null,
    created_at: Date.now(),
    frozen: null, // the Sale body once sent: a retry sends exactly the same
  };
}

export function ticket() {
  if (!state.tickets.length) state.tickets.push(newTicket());
  state.current = Math.min(state.current, state.tickets.length - 1);
  return state.tickets[state.current];
}

// --- the session: register and shift, without the key ------------------------------------------------------
export const loadSession = async () => (await get("meta", "session")) ?? {};
export const saveSession = () =>
  put("meta", { register: state.register, shift: state.shift }, "session");

// --- keys ----------------------------------------------------------------------------------------------------
const keyCache = new Map();
export async function keysFor(shiftId) {
  if (!keyCache.has(shiftId)) {
    const row = await get("keys", shiftId);
    if (!row) return null;
    keyCache.set(shiftId, { aes: row.aes, hmac: row.hmac });
  }
  return keyCache.get(shiftId);
}
export async function storeKeys(shiftId, keys) {
  await put("keys", { shift_id: shiftId, ...keys });
  keyCache.set(shiftId, keys);
}
export async function forgetKeys(shiftId) {
  keyCache.delete(shiftId);
  await del("keys", shiftId);
}

// --- open tickets (encrypted like the queue: they may hold a customer and approved card payments) -------------
// Written at every change (no debounce: a reload right after a tap must find it), one write after another.
let saving = Promise.resolve();
export function saveTickets() {
  const shift = state.shift;
  const keys = state.keys;
  if (!shift || !keys) return saving;
  const saved = structuredClone({ tickets: state.tickets, current: state.current, no: state.ticketNo });
  saving = saving
    .then(async () => put("meta", await encryptJSON(keys.aes, saved, `tickets|${shift.id}`), `tickets:${shift.id}`))
    .catch((error) => console.error("saving the open tickets", error));
  return saving;
}

export async function loadTickets() {
  state.tickets = [];
  state.current = 0;
  const box = await get("meta", `tickets:${state.shift.id}`);
  if (box) {
    try {
      const saved = await decryptJSON(state.keys.aes, box, `tickets|${state.shift.id}`);
      state.tickets = saved.tickets ?? [];
      state.current = saved.current ?? 0;
      state.ticketNo = saved.no ?? state.tickets.length;
    } catch {
      state.tickets = [];
    }
  }
  ticket();
}

export const forgetTickets = (shiftId) => del("meta", `tickets:${shiftId}`);

// --- the last contact with the server (for the offline-hours limit) ---------------------------------------------
let lastWrite = 0;
export function reached() {
  state.lastOnlineAt = Date.now();
  if (state.lastOnlineAt - lastWrite > 30_000) {
    lastWrite = state.lastOnlineAt;
    put("meta", state.lastOnlineAt, "last-online");
  }
}
export async function loadLastOnline() {
  state.lastOnlineAt = (await get("meta", "last-online")) ?? null;
}
