"""The library version (package metadata only: results tables are keyed by their config,
``kinds.base.fingerprint``, and checked against the code that computed them,
``provenance.code_record``)."""

VERSION = "0.1.0"
