"""Artifact builders: <Target>From<Source> steps, each cached by a content key in the artifact manifest."""
