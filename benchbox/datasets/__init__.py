"""The ImageNet test-set family: specs, readers, eval transform and the parallel loader."""
