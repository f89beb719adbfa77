"""Till: commerce for independent shops and restaurants."""
