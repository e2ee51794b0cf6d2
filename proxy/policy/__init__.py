"""Policy decision point: Rego policies over facts computed in Python."""
