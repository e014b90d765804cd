"""The flow-cache job (``extract --features flow``), as the job API exposes it.

The work is :func:`mer_cache.flow.run_flow_extract_job` (catalogue -> TV-L1 onset-to-apex
flow and strain -> flow cache); it is re-exported here so the CLI reaches it through the job
API like every other job.
"""

from mer_cache.flow import FlowConfig, run_flow_extract_job

__all__ = ["FlowConfig", "run_flow_extract_job"]
