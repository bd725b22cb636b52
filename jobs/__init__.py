"""Background jobs on RQ: queues, the enqueue helper, job functions and the worker."""
