"""Model families: ``ser/`` (the Hub remote code) and ``registry`` (Auto* registration)."""
