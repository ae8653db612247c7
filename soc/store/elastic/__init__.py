"""The Elasticsearch event store: templates, shipping, search, retention."""
