"""The point of sale: registers, shifts, counter sales (online and synced from offline), tenders and card readers."""
