"""The web side: the app factory with the alert routes and the live stream (`app`), bounded
parameters (`params`), request limits (`request_limits`) and the pages' files (`web_files`).
Only `hub.app` imports it."""
