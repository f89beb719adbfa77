// The offline queue: sales made without the network, waiting in IndexedDB until POST /pos/api/sync takes them.
//
// Each entry is encrypted with AES-GCM under its shift's key and carries the checksum the server verifies
// (hex HMAC-SHA256 of the sale's canonical JSON). In the clear stay only what ordering and bookkeeping need:
// the sale's id, register, shift, sequence, when it was queued, and its status (pending | refused + reason).
// Sync goes oldest first in batches; created/existing remove the entry, review removes it and leaves a note,
// refused keeps it, marked, until someone retries it or removes it (the server keeps a record of the refusal).

import { checksum, decryptJSON, encryptJSON } from "./crypto.js";
import { all, del, get, put } from "./store.js";

export const BATCH = 50; // the server takes up to 200 per call

const context = (entry) => `${entry.client_sale_id}|${entry.shift_id}`;
const oldestFirst = (a, b) => a.sequence - b.sequence || a.queued_at - b.queued_at;

export async function enqueue(keys, sale) {
  const entry = {
    client_sale_id: sale.client_sale_id,
    register_id: sale.register_id,
    shift_id: sale.shift_id,
    sequence: sale.sequence,
    queued_at: Date.now(),
    status: "pending",
    reason: "",
  };
  entry.checksum = await checksum(keys.hmac, sale);
  entry.box = await encryptJSON(keys.aes, sale, context(entry));
  await put("queue", entry);
  return entry;
}

export async function entries() {
  return (await all("queue")).sort(oldestFirst);
}

export async function readSale(keys, entry) {
  return decryptJSON(keys.aes, entry.box, context(entry));
}

// Sum of the queued sales' totals (the offline limit on what may wait), decrypting each.
export async function queuedTotal(keysFor) {
  let total = 0;
  for (const entry of await entries()) {
    const keys = await keysFor(entry.shift_id);
    if (keys) total += (await readSale(keys, entry)).total_minor;
  }
  return total;
}

// A refused sale taken off the tablet (the server has its refusal on record).
export const remove = (clientSaleId) => del("queue", clientSaleId);

export async function retry(clientSaleId) {
  const entry = await get("queue", clientSaleId);
  if (entry) await put("queue", { ...entry, status: "pending", reason: "" });
}

async function refuse(entry, reason) {
  await put("queue", { ...entry, status: "refused", reason });
}

// One pass over the pending entries. `post(body)` sends one batch and answers the server's reply (it throws
// when the server cannot be reached: the pass stops and the rest waits). Answers what happened, for the screen.
export async function sync({ keysFor, post, onProgress = () => {} }) {
  const outcome = { created: 0, existing: 0, review: [], refused: [], lostCodes: [] };
  const pending = (await entries()).filter((e) => e.status === "pending");
  const byShift = new Map();
  for (const entry of pending) {
    if (!byShift.has(entry.shift_id)) byShift.set(entry.shift_id, []);
    byShift.get(entry.shift_id).push(entry);
  }
  for (const [shiftId, group] of byShift) {
    const keys = await keysFor(shiftId);
    for (let start = 0; start < group.length; start += BATCH) {
      const batch = [];
      for (const entry of group.slice(start, start + BATCH)) {
        if (!keys) {
          await refuse(entry, "This tablet no longer has the shift's key, so it cannot read this sale.");
          outcome.refused.push({ ...entry, reason: "no key" });
          continue;
        }
        // Sent as stored, checksum and all: the server is the one that checks it (and records a refusal).
        batch.push({ entry, sale: await readSale(keys, entry) });
      }
      if (!batch.length) continue;
      const reply = await post({
        register_id: batch[0].entry.register_id,
        shift_id: shiftId,
        entries: batch.map(({ entry, sale }) => ({
          client_sale_id: entry.client_sale_id,
          sequence: entry.sequence,
          sold_at: sale.sold_at,
          sale,
          checksum: entry.checksum,
        })),
      });
      const byId = new Map(batch.map((item) => [item.entry.client_sale_id, item]));
      for (const result of reply.results ?? []) {
        const item = byId.get(result.client_sale_id);
        if (!item) continue;
        if (result.status === "created" || result.status === "existing") {
          outcome[result.status] += 1;
          // Recorded before (its answer lost): the gift cards it sold were activated then, their codes not seen.
          if (result.status === "existing" && result.gift_cards?.length) {
            outcome.lostCodes.push({ ...result, sequence: item.entry.sequence });
          }
          await del("queue", item.entry.client_sale_id);
        } else if (result.status === "review") {
          outcome.review.push({ ...result, sequence: item.entry.sequence, total_minor: item.sale.total_minor });
          await del("queue", item.entry.client_sale_id);
        } else {
          const reason = result.reason || "The server refused this sale.";
          await refuse(item.entry, reason);
          outcome.refused.push({ ...item.entry, reason });
        }
      }
      onProgress(outcome);
    }
  }
  return outcome;
}
