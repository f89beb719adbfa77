"""The POS tablet's pure JavaScript (static/pos/) run in node against the Python it must agree with: canonical
JSON and its HMAC (the offline sync checksum), AES-GCM round trips, and offline pricing (allocation, tax)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.core.money import Money, allocate, parse_amount
from app.tax.providers import DEFAULT_TAX_RULES, BuiltinTax, TaxableLine

POS_JS = Path(__file__).resolve().parents[2] / "static" / "pos"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

# Reads {"op": ..., "args": [...]} cases from stdin, answers a JSON list of results.
RUNNER = """
import { canonicalJSON } from "./canonical.mjs";
import { allocate, parseAmount, priceTicket, roundHalfUp, amountText, quickCash } from "./money.mjs";
import { checksum, importShiftKey, encryptJSON, decryptJSON } from "./crypto.mjs";

const ops = {
  canonical: (value) => canonicalJSON(value),
  allocate, parseAmount, priceTicket, roundHalfUp, amountText, quickCash,
  checksum: async (key, sale) => checksum((await importShiftKey(key)).hmac, sale),
  roundTrip: async (key, value, context) => {
    const { aes } = await importShiftKey(key);
    return decryptJSON(aes, await encryptJSON(aes, value, context), context);
  },
  wrongContext: async (key, value) => {
    const { aes } = await importShiftKey(key);
    try { await decryptJSON(aes, await encryptJSON(aes, value, "a"), "b"); return "decrypted"; }
    catch { return "refused"; }
  },
  rejects: (value) => { try { canonicalJSON(value); return "accepted"; } catch { return "refused"; } },
};
let input = "";
for await (const chunk of process.stdin) input += chunk;
const out = [];
for (const { op, args } of JSON.parse(input)) out.push(await ops[op](...args));
process.stdout.write(JSON.stringify(out));
"""


def run_js(tmp_path: Path, cases: list[tuple[str, list[Any]]]) -> list[Any]:
    assert NODE is not None
    for name in ("canonical", "money", "crypto"):
        source = (POS_JS / f"{name}.js").read_text().replace('from "./canonical.js"', 'from "./canonical.mjs"')
        (tmp_path / f"{name}.mjs").write_text(source)
    (tmp_path / "runner.mjs").write_text(RUNNER)
    payload = json.dumps([{"op": op, "args": args} for op, args in cases])
    done = subprocess.run(
        [NODE, "runner.mjs"], cwd=tmp_path, input=payload, capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    result: list[Any] = json.loads(done.stdout)
    return result


def python_canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


TRICKY: list[Any] = [
    {"b": 1, "a": {"d": [3, 2, {"z": None, "y": True}], "c": False}},
    {"name": "Crème brûlée – “special”", "note": "naïve café 中文 🙂", "emoji🙂": 1, "ｚ": 2, "z": 3},
    {"\U0001f600": "astral", "\uff5e": "bmp", "\ue000": "private use", "~": "ascii"},  # code point order
    {"ctl": "tab\there\nnew line\r\x00\x01\x1f\x7f", "quote": 'say "hi" \\ back/slash', "ls": "\u2028\u2029"},
    {"ints": [0, -1, 1, 42, -4200, 9007199254740991, -9007199254740991], "empty": {}, "list": []},
    {"10": "ten", "9": "nine", "A": "upper", "a": "lower", "_": "under", "": "empty key"},
    [{"b": [{"d": 1, "c": 2}]}, "x", 7, None, False],
    {
        "client_sale_id": "0193a6f2-5c1e-7b7a-9f1e-2d3c4b5a6978",
        "register_id": "0193a6f2-0000-7000-8000-000000000001",
        "shift_id": "0193a6f2-0000-7000-8000-000000000002",
        "sequence": 17,
        "sold_at": "2026-12-05T10:15:00.000+01:00",
        "offline": True,
        "lines": [{"variant_id": "v1", "quantity": 2, "unit_price_minor": 240, "discount_minor": 0, "note": "warm"}],
        "ticket_discount_minor": 0,
        "manager_pin": None,
        "customer_id": None,
        "tenders": [{"kind": "cash", "amount_minor": 480, "tendered_minor": 500}],
        "total_minor": 480,
    },
]
KEY = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()


def test_canonical_json_is_pythons_json_dumps(tmp_path: Path) -> None:
    got = run_js(tmp_path, [("canonical", [value]) for value in TRICKY])
    assert got == [python_canonical(value) for value in TRICKY]


def test_canonical_json_refuses_what_python_would_print_differently(tmp_path: Path) -> None:
    # 1.5 and 1.0 (Python "1.0" vs JavaScript "1"), and integers past 2**53 lose digits in JavaScript.
    assert run_js(tmp_path, [("rejects", [1.5]), ("rejects", [{"a": 2**60}]), ("rejects", [{"a": 3}])]) == [
        "refused",
        "refused",
        "accepted",
    ]


def test_checksum_is_the_hmac_the_server_computes(tmp_path: Path) -> None:
    key = base64.urlsafe_b64decode(KEY + "=" * (-len(KEY) % 4))
    got = run_js(tmp_path, [("checksum", [KEY, value]) for value in TRICKY])
    expected = [hmac.new(key, python_canonical(value).encode("utf-8"), hashlib.sha256).hexdigest() for value in TRICKY]
    assert got == expected


def test_queue_entries_round_trip_and_are_bound_to_their_entry(tmp_path: Path) -> None:
    got = run_js(tmp_path, [("roundTrip", [KEY, TRICKY[1], "sale-1"]), ("wrongContext", [KEY, TRICKY[0]])])
    assert got == [TRICKY[1], "refused"]


def test_allocation_and_amount_parsing_match_python(tmp_path: Path) -> None:
    rng = random.Random(14)
    allocations = [
        (rng.randint(-10_000, 100_000), [rng.randint(0, 5000) for _ in range(rng.randint(1, 6))]) for _ in range(200)
    ]
    allocations = [(total, weights) for total, weights in allocations if sum(weights)]
    texts = ["4.90", "4,9", "12", " 7 ", "1.250", "-2", "abc", "", "0.05", "1.", "99999999999.99"]
    got = run_js(
        tmp_path,
        [("allocate", [total, weights]) for total, weights in allocations]
        + [("parseAmount", [text, "EUR"]) for text in texts]
        + [("parseAmount", ["1500", "JPY"]), ("parseAmount", ["15.5", "JPY"])],
    )
    expected: list[Any] = [allocate(total, weights) for total, weights in allocations]
    expected += [parse_amount(text, "EUR") for text in texts] + [parse_amount("1500", "JPY"), None]
    assert got == expected


def python_price(lines: list[dict[str, Any]], ticket_discount: int, include: bool) -> dict[str, Any]:
    """The pricing the tablet does offline, written with the server's own pieces (allocate, BuiltinTax)."""
    after = [line["unit_price_minor"] * line["quantity"] - line["discount_minor"] for line in lines]
    shares = allocate(ticket_discount, after) if ticket_discount else [0] * len(lines)
    amounts = [a - s for a, s in zip(after, shares, strict=True)]
    quote = BuiltinTax(DEFAULT_TAX_RULES, "EUR").quote(
        [
            TaxableLine(str(i), Money(a, "EUR"), line["tax_class"])
            for i, (a, line) in enumerate(zip(amounts, lines, strict=True))
        ],
        country="DE",
        prices_include_tax=include,
    )
    taxes = [t.tax.amount_minor for t in quote.lines]
    totals = [a if include else a + t for a, t in zip(amounts, taxes, strict=True)]
    return {
        "discount_minor": sum(line["discount_minor"] for line in lines) + ticket_discount,
        "tax_minor": sum(taxes),
        "total_minor": sum(totals),
        "line_tax": taxes,
    }


def test_offline_pricing_matches_the_server_tax_rules(tmp_path: Path) -> None:
    rng = random.Random(2026)
    tickets = []
    for _ in range(60):
        lines: list[dict[str, Any]] = [
            {
                "variant_id": f"v{i}",
                "quantity": rng.randint(1, 5),
                "unit_price_minor": rng.randint(1, 5000),
                "tax_class": rng.choice(["standard", "reduced", "exempt", "unknown"]),
            }
            for i in range(rng.randint(1, 4))
        ]
        for line in lines:
            line["discount_minor"] = rng.choice([0, 0, rng.randint(0, line["unit_price_minor"] * line["quantity"])])
        room = sum(line["unit_price_minor"] * line["quantity"] - line["discount_minor"] for line in lines)
        tickets.append((lines, rng.choice([0, rng.randint(0, room)]) if room else 0, rng.choice([True, False])))
    cases = [
        ("priceTicket", [lines, discount, {"prices_include_tax": include, "country": "DE", "rules": DEFAULT_TAX_RULES}])
        for lines, discount, include in tickets
    ]
    for (lines, discount, include), got in zip(tickets, run_js(tmp_path, cases), strict=True):
        want = python_price(lines, discount, include)
        assert got["discount_minor"] == want["discount_minor"]
        assert got["tax_minor"] == want["tax_minor"]
        assert got["total_minor"] == want["total_minor"]
        assert [line["tax_minor"] for line in got["lines"]] == want["line_tax"]


def test_quick_cash_offers_the_exact_amount_then_round_notes(tmp_path: Path) -> None:
    got = run_js(tmp_path, [("quickCash", [420, "EUR"]), ("quickCash", [2000, "EUR"]), ("amountText", [5, "EUR"])])
    assert got == [[420, 500, 1000, 2000, 5000], [2000, 5000, 10000], "0.05"]
