"""Query generation: backends behind one registry, and the resumable generation stage."""

from inpars.generate.base import Generation, GenerationRequest, generators
from inpars.generate.stage import GenerateSummary, generate_queries

__all__ = ["Generation", "GenerationRequest", "GenerateSummary", "generate_queries", "generators"]
