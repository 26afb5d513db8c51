"""The embedded stack: a Kafka-API broker, PostgreSQL and every service on one machine."""

from headrace.stack.broker import Broker
from headrace.stack.ports import free_port
from headrace.stack.postgres import EmbeddedPostgres

__all__ = ["Broker", "EmbeddedPostgres", "free_port"]
