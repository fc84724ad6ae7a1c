"""The task pipeline: one way to run a task for a principal and record it, below every entry
point (`POST /task`, its streamed form, `/v1`, the CLI, the job worker).

- `spec.py`: `TaskSpec`, a task resolved against the configuration (provider, strategy,
  merged options), and `TaskRejected` for what cannot be resolved;
- `pipeline.py`: `TaskPipeline`, which runs a spec, reports progress, records the outcome
  (succeeded, failed or cancelled) and only then says how it ended.
"""

from api.tasks.pipeline import Outcome, PipelineEvent, TaskPipeline
from api.tasks.spec import TaskRejected, TaskSpec

__all__ = ["Outcome", "PipelineEvent", "TaskPipeline", "TaskRejected", "TaskSpec"]
