// Money on the tablet: integer minor units only (invariant 1). The same arithmetic as app/core/money.py
// (allocate, parse_amount) and app/tax/providers.py (per-line tax, halves away from zero), so a ticket
// priced offline comes out as the server would price it; the server re-prices at sync all the same.
// Pure functions, no DOM: tests/unit/test_pos_js.py runs them in node against the Python originals.

const BPS = 10_000;
const EXEMPT_CLASS = "exempt";

export function minorDigits(currency) {
  return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
}

export function formatMoney(minor, currency, locale = "en-US") {
  const digits = minorDigits(currency);
  // Display only: the one place a minor amount becomes a fraction, never used for arithmetic.
  return new Intl.NumberFormat(locale, { style: "currency", currency }).format(minor / 10 ** digits);
}

// "4.90", "4,9", "12" → minor units; null when it is not an amount or has more decimals than the currency.
export function parseAmount(text, currency) {
  const match = /^\s*(-)?\s*(\d{1,12})(?:[.,](\d+))?\s*$/.exec(text ?? "");
  if (!match) return null;
  const [, sign, whole, fraction = ""] = match;
  const digits = minorDigits(currency);
  if (fraction.length > digits) return null;
  const minor = Number(whole + fraction.padEnd(digits, "0"));
  return sign ? -minor : minor;
}

// Minor units as a form shows them for editing: 490 EUR → "4.90".
export function amountText(minor, currency) {
  const digits = minorDigits(currency);
  const sign = minor < 0 ? "-" : "";
  const text = String(Math.abs(minor)).padStart(digits + 1, "0");
  return digits ? `${sign}${text.slice(0, -digits)}.${text.slice(-digits)}` : `${sign}${text}`;
}

// numerator / denominator rounded to the nearest integer, halves away from zero.
export function roundHalfUp(numerator, denominator) {
  if (denominator === 0) throw new RangeError("roundHalfUp: denominator is zero");
  if (denominator < 0) [numerator, denominator] = [-numerator, -denominator];
  const magnitude = Math.floor((2 * Math.abs(numerator) + denominator) / (2 * denominator));
  return numerator >= 0 ? magnitude : -magnitude;
}

// Split total in proportion to weights; the parts always sum to total (largest remainder, earliest first on
// ties) — app/core/money.py allocate().
export function allocate(total, weights) {
  if (!weights.length) throw new RangeError("allocate needs at least one weight");
  if (weights.some((w) => w < 0)) throw new RangeError("weights must not be negative");
  const weightSum = weights.reduce((a, b) => a + b, 0);
  if (weightSum === 0) throw new RangeError("weights must not all be zero");
  const sign = total < 0 ? -1 : 1;
  const magnitude = Math.abs(total);
  const shares = weights.map((w) => [Math.floor((magnitude * w) / weightSum), (magnitude * w) % weightSum]);
  const parts = shares.map(([q]) => q);
  const leftOver = magnitude - parts.reduce((a, b) => a + b, 0);
  const byRemainder = weights.map((_, i) => i).sort((i, j) => shares[j][1] - shares[i][1] || i - j);
  for (const i of byRemainder.slice(0, leftOver)) parts[i] += 1;
  return parts.map((p) => sign * p);
}

// The rate (basis points) a line of taxClass pays in the store's own country, as BuiltinTax.quote does for a
// sale at the counter (country, no region): exact region "" only, the jurisdiction's default class for a
// class it has no rate for, 0 for exempt or no jurisdiction.
export function taxRate(tax, taxClass) {
  if (taxClass === EXEMPT_CLASS) return 0;
  const rules = tax?.rules ?? {};
  const country = String(tax?.country ?? "").trim().toUpperCase();
  const jurisdiction = (rules.jurisdictions ?? []).find(
    (j) => j.country === country && String(j.region ?? "").trim().toUpperCase() === "",
  );
  if (!jurisdiction) return 0;
  const defaultClass = jurisdiction.default_class ?? rules.default_class ?? "standard";
  return jurisdiction.rates[taxClass] ?? jurisdiction.rates[defaultClass] ?? 0;
}

// (net, tax) of one line amount — app/tax/providers.py _split().
export function splitTax(amount, bps, pricesIncludeTax) {
  if (pricesIncludeTax) {
    const tax = amount - roundHalfUp(amount * BPS, BPS + bps);
    return [amount - tax, tax];
  }
  return [amount, roundHalfUp(amount * bps, BPS)];
}

// A ticket's price: each line's own discount first, then the ticket discount shared across the lines in
// proportion to what is left of them, then tax per line. The same shape as POST /pos/api/price answers.
// lines: [{variant_id, quantity, unit_price_minor, discount_minor, tax_class}]
export function priceTicket(lines, ticketDiscountMinor, tax) {
  const include = Boolean(tax?.prices_include_tax);
  const afterLine = lines.map((l) => l.unit_price_minor * l.quantity - (l.discount_minor || 0));
  const base = afterLine.reduce((a, b) => a + b, 0);
  const ticketDiscount = Math.min(ticketDiscountMinor || 0, Math.max(base, 0));
  const shares = ticketDiscount && base > 0 ? allocate(ticketDiscount, afterLine.map((a) => Math.max(a, 0))) : lines.map(() => 0);
  const priced = lines.map((line, i) => {
    const amount = afterLine[i] - shares[i];
    const [, lineTax] = splitTax(amount, taxRate(tax, line.tax_class), include);
    return {
      variant_id: line.variant_id,
      quantity: line.quantity,
      unit_price_minor: line.unit_price_minor,
      discount_minor: (line.discount_minor || 0) + shares[i],
      tax_minor: lineTax,
      total_minor: include ? amount : amount + lineTax,
    };
  });
  const sum = (key) => priced.reduce((a, l) => a + l[key], 0);
  return {
    lines: priced,
    subtotal_minor: lines.reduce((a, l) => a + l.unit_price_minor * l.quantity, 0),
    discount_minor: sum("discount_minor"),
    tax_minor: sum("tax_minor"),
    total_minor: sum("total_minor"),
  };
}

// Cash a customer is likely to hand over for `due`: the exact amount, then the next round amounts up.
export function quickCash(due, currency) {
  const unit = 10 ** minorDigits(currency);
  const steps = [1, 5, 10, 20, 50, 100].map((n) => n * unit);
  const amounts = [due];
  for (const step of steps) {
    const up = Math.ceil(due / step) * step;
    if (up > due && !amounts.includes(up)) amounts.push(up);
    if (amounts.length >= 5) break;
  }
  return amounts;
}

// Is a discount of `discount` on `base` over a limit of `limitBps`? (a limit of null: no limit)
export function overLimit(discount, base, limitBps) {
  if (limitBps === null || limitBps === undefined || discount <= 0) return false;
  return discount * BPS > limitBps * base;
}
