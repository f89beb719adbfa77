"""CSV downloads for staff (order lists, audits, promotion usage): spreadsheet-safe cells, one shape."""

from __future__ import annotations

import csv
import io

from litestar import Response


def csv_response(rows: list[list[str]], filename: str) -> Response[str]:
    """``rows`` as a CSV attachment. A cell starting with = + - @ would be a formula in a spreadsheet: it is quoted
    as text."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([f"'{cell}" if cell[:1] in ("=", "+", "-", "@") else cell for cell in row])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
