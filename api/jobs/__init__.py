"""Background tasks: accepted as queued rows of the history, run by workers through the task
pipeline, watched through an event log, cancelled, reported by callback.

- `queue.py`: Taskiq brokers (taskiq-redis with REDIS_URL, in-memory without);
- `runtime.py`: `JobRuntime`: claim under a lease, run, renew, finish; the sweeper; cancels;
- `events.py`: the per-task event log (Redis Streams, or in process);
- `callbacks.py`: the signed callback;
- `worker.py`: the `reasoning-agent worker` process (metrics and probes included).
"""
