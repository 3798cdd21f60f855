"""Reproducing the papers' tables: expected scores kept as YAML in the layout of pyserini's 2CR tables
(:mod:`~inpars.reproduce.tables`), a condition run through the library (:mod:`~inpars.reproduce.run`), sanity counts
checked before scoring and every cell compared within its stated tolerance (:mod:`~inpars.reproduce.check`), an OK /
FAIL table and a markdown report with a bar chart (:mod:`~inpars.reproduce.report`)."""

from inpars.reproduce.check import check_counts, compare
from inpars.reproduce.report import listing, result_table, write_report
from inpars.reproduce.run import condition_config, plan, released_queries, reproduce, runnable_cell
from inpars.reproduce.tables import AVERAGE_SLACK, Tables, load_tables

__all__ = [
    "AVERAGE_SLACK",
    "Tables",
    "check_counts",
    "compare",
    "condition_config",
    "listing",
    "load_tables",
    "plan",
    "released_queries",
    "reproduce",
    "result_table",
    "runnable_cell",
    "write_report",
]
