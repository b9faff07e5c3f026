"""Storage back-ends: git (GitPython), the local DVC cache, DVC remotes, object transfer."""
