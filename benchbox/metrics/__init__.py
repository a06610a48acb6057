"""Metrics: numpy in, numbers out, one implementation of each, used everywhere."""
