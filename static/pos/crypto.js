// The offline queue's cryptography (WebCrypto only; also runs in node for tests/unit/test_pos_js.py).
//
// The shift's offline_key (base64url of 32 random bytes, from the shift API) becomes two non-extractable
// CryptoKeys: AES-GCM-256 that encrypts each queued sale, and HMAC-SHA256 that signs the sale's canonical JSON
// (the checksum the server verifies at sync). Non-extractable: page script can use them but never read the
// bytes back, and IndexedDB stores them as opaque keys so a reload offline can still read the queue.

import { canonicalJSON } from "./canonical.js";

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();

export function base64urlToBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

export function toHex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function importShiftKey(offlineKey) {
  const raw = base64urlToBytes(offlineKey);
  if (raw.length !== 32) throw new Error("The shift's offline key is not 32 bytes.");
  const aes = await subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
  const hmac = await subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  raw.fill(0);
  return { aes, hmac };
}

// Hex HMAC-SHA256 of the sale's canonical JSON (UTF-8): what POST /pos/api/sync checks.
export async function checksum(hmacKey, sale) {
  return toHex(await subtle.sign("HMAC", hmacKey, utf8.encode(canonicalJSON(sale))));
}

// AES-GCM with a fresh 96-bit IV; `context` (the entry's ids) is bound as additional data, so a ciphertext
// moved onto another entry does not decrypt.
export async function encryptJSON(aesKey, value, context) {
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const data = await subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: utf8.encode(context) },
    aesKey,
    utf8.encode(JSON.stringify(value)),
  );
  return { iv, data };
}

export async function decryptJSON(aesKey, box, context) {
  const plain = await subtle.decrypt(
    { name: "AES-GCM", iv: box.iv, additionalData: utf8.encode(context) },
    aesKey,
    box.data,
  );
  return JSON.parse(new TextDecoder().decode(plain));
}
