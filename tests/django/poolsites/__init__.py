"""Site modules for the pooled-master tests: each star-imports a real site module and only
swaps its URLconf for one with extra pages (a session counter on every site, /tides on harbor
alone), so that a test can tell which URLconf, session and cookies served a request."""
