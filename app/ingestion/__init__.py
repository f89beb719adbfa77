"""Channel order ingestion: orders a sales channel (a POS or delivery app) already took, sent to Till signed."""
