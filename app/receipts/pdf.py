"""The receipt as a PDF (reportlab, ADR 0008): A4, the store's details, every line with its discount, the totals,
the tax lines, the tenders and the change. Bitstream Vera (shipped inside reportlab) draws the euro and
multiplication signs."""

from __future__ import annotations

import functools
import io
from datetime import datetime
from pathlib import Path

import reportlab
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from app.receipts.document import ReceiptDocument, Row

FONT, BOLD = "TillVera", "TillVera-Bold"
_FONTS = Path(reportlab.__file__).parent / "fonts"
LEFT, RIGHT = 20 * mm, A4[0] - 20 * mm
TOP, BOTTOM = A4[1] - 20 * mm, 20 * mm
COLUMNS = (LEFT, 115 * mm, 140 * mm, RIGHT)  # item | qty × unit | (discount) | total (right-aligned)


@functools.cache
def _register_fonts() -> None:
    pdfmetrics.registerFont(TTFont(FONT, str(_FONTS / "Vera.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, str(_FONTS / "VeraBd.ttf")))


class _Page:
    def __init__(self, canvas: Canvas, doc: ReceiptDocument) -> None:
        self.canvas, self.doc, self.y = canvas, doc, TOP

    def need(self, height: float) -> None:
        if self.y - height < BOTTOM:
            self.canvas.setFont(FONT, 8)
            self.canvas.drawRightString(RIGHT, BOTTOM - 8 * mm, "continued on the next page")
            self.canvas.showPage()
            self.y = TOP

    def text(self, x: float, value: str, *, size: float = 10, bold: bool = False, right: bool = False) -> None:
        self.canvas.setFont(BOLD if bold else FONT, size)
        (self.canvas.drawRightString if right else self.canvas.drawString)(x, self.y, value)

    def down(self, height: float = 5 * mm) -> None:
        self.y -= height

    def rule(self) -> None:
        self.canvas.setLineWidth(0.5)
        self.canvas.line(LEFT, self.y + 3 * mm, RIGHT, self.y + 3 * mm)
        self.down(2 * mm)

    def row(self, row: Row, *, indent: float = 0) -> None:
        self.need(6 * mm)
        self.text(COLUMNS[2] - 25 * mm + indent, row.label, bold=row.strong, size=11 if row.strong else 10)
        self.text(RIGHT, self.doc.value(row), bold=row.strong, right=True, size=11 if row.strong else 10)
        self.down()


def render_pdf(doc: ReceiptDocument, *, logo_png: bytes | None = None) -> bytes:
    _register_fonts()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1, invariant=True)
    canvas.setTitle(f"{doc.title} {doc.display_number} · {doc.store_name}")
    canvas.setAuthor(doc.store_name)
    page = _Page(canvas, doc)
    if logo_png:  # the store's logo (stored as PNG, at most 512 px), top left, 16 mm high
        logo = ImageReader(io.BytesIO(logo_png))
        width, height = logo.getSize()
        side = 16 * mm
        canvas.drawImage(logo, LEFT, TOP - side + 5 * mm, side * width / max(height, 1), side, mask="auto")
        page.y -= side + 2 * mm
    page.text(LEFT, doc.store_name, size=16, bold=True)
    page.text(RIGHT, doc.title, size=14, bold=True, right=True)
    page.down(6 * mm)
    for line in doc.store_lines:
        page.text(LEFT, line, size=9)
        page.down(4.5 * mm)
    page.down(3 * mm)
    page.text(LEFT, f"{doc.title} {doc.display_number}", bold=True)
    page.text(RIGHT, doc.reference, right=True)
    page.down()
    page.text(LEFT, _when(doc.issued_at), size=9)
    page.down(9 * mm)

    if doc.lines:
        page.text(COLUMNS[0], "Item", bold=True, size=9)
        page.text(COLUMNS[1], "Qty × price", bold=True, size=9)
        page.text(COLUMNS[3], "Amount", bold=True, size=9, right=True)
        page.down(5 * mm)
        page.rule()
        for item in doc.lines:
            page.need(11 * mm)
            page.text(COLUMNS[0], _fit_width(item.name, COLUMNS[1] - COLUMNS[0] - 3 * mm))
            page.text(COLUMNS[1], f"{item.quantity} × {doc.fmt(item.unit_minor)}")
            page.text(COLUMNS[3], doc.fmt(item.quantity * item.unit_minor), right=True)
            page.down()
            if item.discount_minor:
                page.text(COLUMNS[0] + 4 * mm, "Discount", size=9)
                page.text(COLUMNS[3], doc.fmt(-item.discount_minor), size=9, right=True)
                page.down(4.5 * mm)
        page.down(2 * mm)
        page.rule()
    for row in doc.totals:
        page.row(row)
    if doc.tax_lines:
        page.down(2 * mm)
        for row in doc.tax_lines:
            page.row(row)
    if doc.tenders:
        page.down(3 * mm)
        page.need(6 * mm)
        page.text(LEFT, "Given back" if doc.kind == "refund" else "Paid with", bold=True)
        page.down()
        for row in doc.tenders:
            page.row(row)
        if doc.change_minor:
            page.row(Row("Change", doc.change_minor))
    if doc.loyalty:
        page.down(3 * mm)
        page.need(6 * mm)
        page.text(LEFT, "Loyalty", bold=True)
        page.down()
        for row in doc.loyalty:
            page.row(row)
    if doc.notes:
        page.down(3 * mm)
        for note in doc.notes:
            page.need(5 * mm)
            page.text(LEFT, _fit(note, 95), size=9)
            page.down(4.5 * mm)
    if doc.footer:
        page.down(6 * mm)
        page.need(6 * mm)
        page.text(LEFT, doc.footer, size=10)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _fit_width(text: str, width: float, size: float = 10) -> str:
    """The text, cut with an ellipsis so that it fits ``width`` points in the regular font."""
    if pdfmetrics.stringWidth(text, FONT, size) <= width:
        return text
    while text and pdfmetrics.stringWidth(text + "…", FONT, size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%d %b %Y %H:%M UTC")
    except ValueError:
        return iso
