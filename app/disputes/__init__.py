"""Disputes (chargebacks): the record a provider's dispute events keep, its evidence pack, and submission."""
