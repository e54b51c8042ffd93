"""The demo: a simulated care home (its beds, staff, roster and registry), an embedded broker, a
scripted night and the run that puts them together with a real hub and real edge agents.

`carewatch demo` (carewatch/commands/demo.py) runs it; `carewatch sim scenario` and `carewatch
walktest --simulate` borrow its broker and its local hub configuration.
"""
