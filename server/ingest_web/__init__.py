"""``POST /v1/events``: online product views and purchases in, stored against profiles."""
