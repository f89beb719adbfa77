"""Reconciliation and money operations: the status poller, the drift report, payout matching, provider call audit."""
