"""Local stand-in for the TeamViewer IoT Agent: Mosquitto plus the agent\x27s API logic."""
