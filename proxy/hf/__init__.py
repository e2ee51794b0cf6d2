"""The Hugging Face Hub side: raw-path routes, upstream and stored layers, policy, files."""
