"""The receipt as ESC/POS bytes (python-escpos) for 58 mm and 80 mm paper, and ``escpos_text`` to read them back.

Rendered on the server from the same ReceiptDocument as the PDF: the store's logo, the lines in columns, the
totals, the tax lines, the tenders and change, a QR code to the digital receipt, then a cut. One code page
(CP858: it has the euro and multiplication signs) so a test, a bench and the fake printer can decode what
the printer would print.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass

from escpos.printer import Dummy
from PIL import Image

from app.receipts.document import ReceiptDocument, Row

PROFILE = "TM-T88V"
CODE_PAGE = "CP858"
PAPER = {58: (32, 384), 80: (42, 512)}  # paper width → (Font A columns, printable pixels)
STATUS_QUERY = b"\x10\x04\x04"  # DLE EOT 4: the paper roll sensor; a reply with bits 0x60 set means no paper
PAPER_OUT_BITS = 0x60


@dataclass(frozen=True)
class Layout:
    columns: int
    pixels: int

    @classmethod
    def of(cls, paper_mm: int) -> Layout:
        columns, pixels = PAPER.get(paper_mm, PAPER[80])
        return cls(columns, pixels)

    def pair(self, left: str, right: str) -> str:
        room = self.columns - len(right) - 1
        return f"{left[:room]:<{room}} {right}\n"


def _safe(text: str) -> str:
    """Only what CP858 can print (a name in another script becomes '?', never a crash)."""
    return text.encode("cp858", "replace").decode("cp858")


def render_escpos(
    doc: ReceiptDocument, *, paper_mm: int = 80, qr_url: str = "", logo_png: bytes | None = None
) -> bytes:
    layout = Layout.of(paper_mm)
    p = Dummy(profile=PROFILE)
    p.hw("INIT")
    p.charcode(CODE_PAGE)
    if logo_png:
        image = Image.open(io.BytesIO(logo_png)).convert("L")
        image.thumbnail((layout.pixels // 2, 160))
        p.image(image, center=True)
    p.set(align="center", bold=True, double_height=True, double_width=True)
    p.text(_safe(doc.store_name[: layout.columns // 2]) + "\n")
    p.set(align="center", normal_textsize=True)
    for line in doc.store_lines:
        p.text(_safe(line[: layout.columns]) + "\n")
    p.text("\n")
    p.set(align="center", bold=True)
    p.text(_safe(f"{doc.title} {doc.display_number}") + "\n")
    p.set(align="center", bold=False)
    p.text(_safe(doc.reference[: layout.columns]) + "\n")
    if doc.issued_at:
        p.text(_safe(f"{doc.issued_at[:16].replace('T', ' ')} UTC") + "\n")
    p.set(align="left")
    rule = "-" * layout.columns + "\n"
    if doc.lines:
        p.text(rule)
        for item in doc.lines:
            p.text(_safe(item.name[: layout.columns]) + "\n")
            gross = doc.fmt(item.quantity * item.unit_minor)
            p.text(_safe(layout.pair(f"  {item.quantity} × {doc.fmt(item.unit_minor)}", gross)))
            if item.discount_minor:
                p.text(_safe(layout.pair("  Discount", doc.fmt(-item.discount_minor))))
    p.text(rule)
    for row in doc.totals:
        _row(p, doc, layout, row)
    for row in doc.tax_lines:
        _row(p, doc, layout, row)
    if doc.tenders:
        p.text(rule)
        p.text("Given back:\n" if doc.kind == "refund" else "Paid with:\n")
        for row in doc.tenders:
            _row(p, doc, layout, row)
        if doc.change_minor:
            _row(p, doc, layout, Row("Change", doc.change_minor))
    if doc.loyalty:
        p.text(rule)
        for row in doc.loyalty:
            _row(p, doc, layout, row)
    for note in doc.notes:
        p.text(_safe(_wrap(note, layout.columns)))
    if qr_url:
        p.text("\n")
        p.set(align="center")
        p.qr(qr_url, native=True, size=4 if paper_mm == 58 else 6)
        p.text("Your receipt online\n")
    if doc.footer:
        p.set(align="center")
        p.text(_safe(_wrap(doc.footer, layout.columns)))
    p.cut()
    return bytes(p.output)


def _wrap(text: str, columns: int) -> str:
    return "".join(line + "\n" for line in textwrap.wrap(text, columns)[:4])


def _row(p: Dummy, doc: ReceiptDocument, layout: Layout, row: Row) -> None:
    if row.strong:
        p.set(bold=True)
    p.text(_safe(layout.pair(row.label, doc.value(row))))
    if row.strong:
        p.set(bold=False)


# ---- reading the bytes back (tests, the bench, the fake printer) ----------------------------------------------

_ONE_ARG_ESC = {ord("t"), ord("!"), ord("E"), ord("a"), ord("d"), ord("-"), ord("M"), ord("J"), ord("3"), ord("G")}


def escpos_text(data: bytes) -> str:
    """The printable text of an ESC/POS stream from ``render_escpos`` (commands, images and QR data skipped)."""
    out: list[str] = []
    i, n = 0, len(data)
    text = bytearray()

    def flush() -> None:
        if text:
            out.append(text.decode("cp858", "replace"))
            text.clear()

    while i < n:
        b = data[i]
        if b == 0x1B and i + 1 < n:  # ESC
            flush()
            cmd = data[i + 1]
            i += 3 if cmd in _ONE_ARG_ESC else 2
        elif b == 0x1D and i + 1 < n:  # GS
            flush()
            cmd = data[i + 1]
            if cmd == ord("(") and i + 4 < n:  # GS ( k pL pH ...
                i += 5 + data[i + 3] + data[i + 4] * 256
            elif cmd == ord("v") and i + 7 < n:  # GS v 0 m xL xH yL yH raster
                width = data[i + 4] + data[i + 5] * 256
                height = data[i + 6] + data[i + 7] * 256
                i += 8 + width * height
            elif cmd == ord("V"):  # cut: GS V m (n)
                i += 4 if i + 2 < n and data[i + 2] in (65, 66, 97, 98) else 3
            else:
                i += 3
        elif b == 0x10 and i + 2 < n and data[i + 1] == 0x04:  # DLE EOT n
            flush()
            i += 3
        elif b == 0x0A or b >= 0x20:
            text.append(b)
            i += 1
        else:
            i += 1
    flush()
    return "".join(out)
