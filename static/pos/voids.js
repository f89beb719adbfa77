// Voided tickets and lines, reported to POST /pos/api/voids for the shift report (docs/pos.md, "Voids").
//
// A void is kept on the tablet until the server has it: encrypted under the shift's key in IndexedDB ("meta",
// voids:<shift>), like the open tickets, so a void made offline (or before a reload) is sent when the network
// returns. Each carries its own client_void_id: sent twice, it is recorded once. A void the server refuses (bad
// data, another register's shift) is dropped with a console note: keeping it would block the ones after it.

import { ApiError, NetworkError, api } from "./api.js";
import { decryptJSON, encryptJSON } from "./crypto.js";
import { state, uuid } from "./state.js";
import { get, put } from "./store.js";

const slot = (shiftId) => `voids:${shiftId}`;
let work = Promise.resolve();
const serially = (fn) => (work = work.then(fn, fn));

async function load(shift, keys) {
  const box = await get("meta", slot(shift.id));
  if (!box) return [];
  try {
    return await decryptJSON(keys.aes, box, slot(shift.id));
  } catch {
    return [];
  }
}

const save = async (shift, keys, pending) => put("meta", await encryptJSON(keys.aes, pending, slot(shift.id)), slot(shift.id));

// What a ticket line came to after its own discount (the ticket's discount is shared out only at sale).
export const lineAmount = (line) => Math.max(0, line.unit_price_minor * line.quantity - (line.discount_minor ?? 0));

const asVoidLine = (line) => ({
  variant_id: line.variant_id ?? null,
  name: [line.name, line.title].filter(Boolean).join(" · ").slice(0, 200),
  quantity: line.quantity,
  amount_minor: lineAmount(line),
});

// Record a void of ``lines`` ("ticket" or "line") with its reason, then try to send what is waiting.
export function recordVoid(kind, reason, lines) {
  const shift = state.shift;
  const keys = state.keys;
  if (!shift || !keys || !state.register || !lines.length) return Promise.resolve();
  const entry = {
    client_void_id: uuid(),
    register_id: state.register.id,
    shift_id: shift.id,
    kind,
    reason,
    voided_at: new Date().toISOString(),
    lines: lines.map(asVoidLine),
  };
  return serially(async () => save(shift, keys, [...(await load(shift, keys)), entry])).then(() => sendVoids());
}

// Send the shift's waiting voids, oldest first; stops at the first that cannot reach the server.
export function sendVoids() {
  const shift = state.shift;
  const keys = state.keys;
  if (!shift || !keys) return Promise.resolve(0);
  return serially(async () => {
    const pending = await load(shift, keys);
    let sent = 0;
    while (pending.length) {
      try {
        await api("POST", "/pos/api/voids", pending[0]);
      } catch (error) {
        if (error instanceof NetworkError) break;
        if (!(error instanceof ApiError) || error.status >= 500 || error.status === 401) break;
        console.error("the server refused a void", pending[0], error.fields);
      }
      pending.shift();
      sent += 1;
    }
    if (sent) await save(shift, keys, pending);
    return pending.length;
  });
}
