"""Storage: git (run as a subprocess by git_ops), the local DVC cache and pointers, DVC config
and remotes, object transfer, atomic files, the repository lock, per-clone state."""
