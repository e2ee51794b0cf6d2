"""airlock: a policy-enforcing mirror proxy for Python packages and Hugging Face Hub artifacts."""

__version__ = "0.1.0"
