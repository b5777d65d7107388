"""Client of the TeamViewer IoT Agent's MQTT API: provisioning, mutual TLS and every request."""
