"""Promotions and vouchers: codes and automatic discounts, their usage limits and reports."""
