"""SAQ worker: settings, task modules, and the outbox relay that runs beside them."""
