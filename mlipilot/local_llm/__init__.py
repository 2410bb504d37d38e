"""Model back-ends the LLM agent talks to (a local OpenAI-compatible server; remote providers go
through litellm directly)."""
