"""What the tests share: one fake clock, waiting for a condition, and (as they are gathered here)
the real servers, browsers and callers the tests drive."""
