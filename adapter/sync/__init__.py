"""Sync with hospital FHIR servers: configuration, authentication, the FHIR client, the
durable outbox and inbound Subscription notifications."""

__all__: list[str] = []
