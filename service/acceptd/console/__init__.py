"""The web console: static pages (plain HTML and ES modules, no build step) that the API
serves at /ui/ and that call the public API like any client."""
