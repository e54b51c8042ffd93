"""The web side: the app made from the router list (`app`), the parts routes ask for (`deps`),
the one mapping of domain errors to HTTP answers (`errors`), bounded parameters (`params`), the
live streams' timing (`streams`), request limits (`request_limits`) and the pages' files
(`web_files`). Imports `core`, `access` and `config`; routes modules may import `deps`, `params`,
`streams` and `web_files`, and `hub.app` the rest."""
