// Canonical JSON: the exact bytes the server checks an offline sale's HMAC against.
//
// It must equal Python's `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`:
// object keys sorted by Unicode code point at every level (Python's str order, not JavaScript's UTF-16
// order, which differs for characters beyond U+FFFF), no whitespace, non-ASCII characters as themselves.
// Strings are escaped exactly as JSON.stringify does, which for well-formed strings is what Python writes
// ("\n", "\"", "\\", other control characters as \u00xx). Numbers must be safe integers: money here is
// integer minor units, and a float would print differently in the two languages (1.0 vs 1).
// Tested against Python in tests/unit/test_pos_js.py.

const byCodePoint = (a, b) => {
  const x = [...a];
  const y = [...b];
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i += 1) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
};

export function canonicalJSON(value) {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isSafeInteger(value)) throw new TypeError(`canonical JSON takes integers only, got ${value}`);
      return Object.is(value, -0) ? "0" : String(value);
    case "string":
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map(canonicalJSON).join(",")}]`;
      const keys = Object.keys(value).sort(byCodePoint);
      const parts = keys.map((key) => {
        if (value[key] === undefined) throw new TypeError(`canonical JSON: ${key} is undefined (use null)`);
        return `${JSON.stringify(key)}:${canonicalJSON(value[key])}`;
      });
      return `{${parts.join(",")}}`;
    }
    default:
      throw new TypeError(`canonical JSON cannot encode a ${typeof value}`);
  }
}
