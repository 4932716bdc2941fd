"""Product feed formats, each mapped to ``catalog`` records (see ``records``)."""
