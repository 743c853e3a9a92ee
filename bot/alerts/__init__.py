"""Alerts: the outbox (what to raise, delivery with retries), formatting, and notifiers."""
