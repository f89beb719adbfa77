"""Receipts (issue 17): one receipt per paid order, refund and closed shift; PDF, ESC/POS, e-mail, WhatsApp."""
