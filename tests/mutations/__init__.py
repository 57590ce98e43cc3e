"""Named mutations of the code, and the harness that shows the tests catch each (make test-mutations)."""
