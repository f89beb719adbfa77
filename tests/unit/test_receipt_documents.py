"""Receipt documents, renderers and links without I/O."""

from __future__ import annotations

import uuid

import pytest

from app.receipts.channels.whatsapp import phone_digits, signature_ok, statuses_of
from app.receipts.document import Line, ReceiptDocument, Row
from app.receipts.links import check, signed_path
from app.receipts.pdf import render_pdf
from app.receipts.thermal import PAPER, escpos_text, render_escpos


def _doc() -> ReceiptDocument:
    return ReceiptDocument(
        kind="sale", title="Receipt", reference="Order #1042", issued_at="2026-12-05T08:00:00+00:00", currency="EUR",
        store_name="Demo Café", store_lines=["Main St 1, 10115 Berlin"],
        lines=[Line("A very long product name that does not fit on a narrow roll of paper", 2, 1190, 238, 2142, 700)],
        totals=[Row("Subtotal", 2380), Row("Ten off (TEN)", -238), Row("Total", 2142, strong=True)],
        tax_lines=[Row("incl. tax 7 %", 140)], tenders=[Row("Cash given", 3000)], change_minor=858, number=7,
    )  # fmt: skip


def test_a_document_survives_its_json_and_knows_its_total() -> None:
    doc = _doc()
    again = ReceiptDocument.from_json(doc.as_json())
    assert again == doc and again.total_minor == 2142 and again.display_number == "R-000007"


@pytest.mark.parametrize("paper", [58, 80])
def test_thermal_lines_fit_the_paper_and_decode_to_the_totals(paper: int) -> None:
    text = escpos_text(render_escpos(_doc(), paper_mm=paper, qr_url="http://x/r/1"))
    columns = PAPER[paper][0]
    assert all(len(line) <= columns for line in text.splitlines()), text
    for expected in ("2 × €11.90", "-€2.38", "Total", "€21.42", "incl. tax 7 %", "€1.40", "Change", "€8.58"):
        assert expected in text


def test_the_pdf_renders_the_same_bytes_for_the_same_receipt() -> None:
    first = render_pdf(_doc())
    assert first.startswith(b"%PDF") and first == render_pdf(_doc())


def test_a_signed_link_expires_and_refuses_any_change() -> None:
    receipt_id = uuid.uuid4()
    path = signed_path("secret", receipt_id, now=1000.0, lifetime_s=60)
    exp = path.split("exp=")[1].split("&")[0]
    sig = path.split("sig=")[1]
    assert check("secret", receipt_id, exp, sig, now=1030.0) == "ok"
    assert check("secret", receipt_id, exp, sig, now=1061.0) == "expired"
    assert check("secret", uuid.uuid4(), exp, sig, now=1030.0) == "invalid"
    assert check("secret", receipt_id, str(int(exp) + 1), sig, now=1030.0) == "invalid"
    assert check("other", receipt_id, exp, sig, now=1030.0) == "invalid"
    assert check("secret", receipt_id, "", "", now=1030.0) == "invalid"


def test_whatsapp_numbers_signatures_and_statuses() -> None:
    assert phone_digits("+49 151 1234-5678") == "4915112345678"
    assert phone_digits("0049 (151) 12345678") == "4915112345678"
    assert phone_digits("0151 12345678") is None  # no country code: WhatsApp cannot tell where
    assert phone_digits("+12") is None
    import hashlib
    import hmac

    body = b'{"entry":[{"changes":[{"value":{"statuses":[{"id":"wamid.1","status":"read"}]}}]}]}'
    good = "sha256=" + hmac.new(b"s", body, hashlib.sha256).hexdigest()
    assert (
        signature_ok("s", body, good) and not signature_ok("s", body + b" ", good) and not signature_ok("s", body, "")
    )
    assert statuses_of({"entry": [{"changes": [{"value": {"statuses": [{"id": "wamid.1", "status": "read"}]}}]}]}) == [
        {"id": "wamid.1", "status": "read"}
    ]
