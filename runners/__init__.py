"""Training runners the orchestrator launches (see README.md here)."""
