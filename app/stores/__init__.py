"""Stores (tenants), staff users, memberships with roles, and API tokens."""
