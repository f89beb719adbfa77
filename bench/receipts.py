"""Receipt renders per second on one core: the PDF (reportlab) and the ESC/POS bytes (python-escpos, 80 mm with a
QR code), from the same ReceiptDocument of a 12-line order with discounts, two tax rates and two tenders.

    .venv/bin/python -m bench.receipts [--seconds 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from app.receipts.document import Line, ReceiptDocument, Row
from app.receipts.pdf import render_pdf
from app.receipts.thermal import render_escpos


def demo_document(lines: int = 12) -> ReceiptDocument:
    items = [
        Line(f"Item {i} · espresso beans 250 g", 1 + i % 3, 1190 + 10 * i, 119 if i % 4 == 0 else 0, 0, 700)
        for i in range(lines)
    ]
    items = [Line(x.name, x.quantity, x.unit_minor, x.discount_minor, x.quantity * x.unit_minor - x.discount_minor,
                  x.tax_rate_bps) for x in items]  # fmt: skip
    subtotal = sum(x.quantity * x.unit_minor for x in items)
    discount = sum(x.discount_minor for x in items)
    total = subtotal - discount
    return ReceiptDocument(
        kind="sale", title="Receipt", reference="Order #1042", issued_at="2026-12-05T08:00:00+00:00",
        currency="EUR", store_name="Demo Café", store_lines=["Main St 1, 10115 Berlin", "+49 30 123456"],
        lines=items, totals=[Row("Subtotal", subtotal), Row("Summer (SUMMER10)", -discount), Row("Total", total, True)],
        tax_lines=[Row("incl. tax 7 %", total * 7 // 107)],
        tenders=[Row("Card", total - 1000), Row("Cash given", 2000)],
        change_minor=1000, number=42,
    )  # fmt: skip


def rate(render: Callable[[], bytes], seconds: float) -> tuple[float, int]:
    render()  # warm up (fonts, profiles)
    count, start = 0, time.perf_counter()
    size = 0
    while time.perf_counter() - start < seconds:
        size = len(render())
        count += 1
    return count / (time.perf_counter() - start), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    doc = demo_document()
    url = "https://shop.example/r/0192f3a0-0000-7000-8000-000000000000?exp=1804234010&sig=" + "a" * 64
    pdf_rate, pdf_size = rate(lambda: render_pdf(doc), args.seconds)
    esc_rate, esc_size = rate(lambda: render_escpos(doc, paper_mm=80, qr_url=url), args.seconds)
    print(f"PDF renders/s (one core):    {pdf_rate:8.1f}  ({1000 / pdf_rate:.2f} ms each, {pdf_size} bytes)")
    print(f"ESC/POS renders/s (one core): {esc_rate:8.1f}  ({1000 / esc_rate:.2f} ms each, {esc_size} bytes)")


if __name__ == "__main__":
    main()
