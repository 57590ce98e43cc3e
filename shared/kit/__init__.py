"""The service kit: what every service needs, in one place (docs/architecture.md)."""
