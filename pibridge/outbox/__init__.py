"""The on-disk outbox: readings not yet acknowledged by the agent."""
