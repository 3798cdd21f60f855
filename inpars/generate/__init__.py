"""Query generation: backends behind one registry, and the resumable, shardable generation stage."""

from inpars.generate.base import Generation, GenerationRequest, generators
from inpars.generate.stage import GenerateSummary, generate_queries, merge_shards

__all__ = ["GenerateSummary", "Generation", "GenerationRequest", "generate_queries", "generators", "merge_shards"]
