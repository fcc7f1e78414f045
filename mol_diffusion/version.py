"""The library version (part of every results-cache key; see ``kinds.base.fingerprint``)."""

VERSION = "0.1.0"
