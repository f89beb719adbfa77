// The tablet's IndexedDB ("till-pos"): what must survive a reload while offline.
//   keys  — per shift: its AES-GCM and HMAC CryptoKeys (non-extractable), deleted when the shift closes or the
//           cashier signs out
//   queue — offline sales, one encrypted entry each (queue.js)
//   meta  — small plain facts: the chosen register, the open shift (without its key), the register's sale
//           sequence, the last contact with the server, review notes; and the open tickets (encrypted)

const DB_NAME = "till-pos";
const VERSION = 1;
let opening = null;

const done = (request) =>
  new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });

export function openDB() {
  opening ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, VERSION);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore("keys", { keyPath: "shift_id" });
      db.createObjectStore("queue", { keyPath: "client_sale_id" });
      db.createObjectStore("meta");
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  return opening;
}

async function tx(storeName, mode, work) {
  const db = await openDB();
  const transaction = db.transaction(storeName, mode);
  const finished = new Promise((resolve, reject) => {
    transaction.oncomplete = resolve;
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error ?? new Error("IndexedDB transaction aborted"));
  });
  const result = await work(transaction.objectStore(storeName));
  await finished;
  return result;
}

export const get = (storeName, key) => tx(storeName, "readonly", (s) => done(s.get(key)));
export const all = (storeName) => tx(storeName, "readonly", (s) => done(s.getAll()));
export const put = (storeName, value, key) =>
  tx(storeName, "readwrite", (s) => done(key === undefined ? s.put(value) : s.put(value, key)));
export const del = (storeName, key) => tx(storeName, "readwrite", (s) => done(s.delete(key)));

// The register's next sale number, counted on this tablet (read and bumped in one transaction).
export function nextSequence(registerId) {
  const key = `seq:${registerId}`;
  return tx("meta", "readwrite", async (s) => {
    const next = ((await done(s.get(key))) ?? 0) + 1;
    await done(s.put(next, key));
    return next;
  });
}
