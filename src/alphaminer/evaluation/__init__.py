"""Factor evaluation: IC / RankIC / ICIR, diversity, turnover, and the lasso alpha pool."""

from alphaminer.evaluation.metrics import (
    ICSummary,
    correlation_matrix,
    daily_ic,
    daily_rank_ic,
    ic_stats,
    ic_summary,
    ic_summary_table,
    max_correlation,
    mutual_correlation,
    rank_autocorrelation,
    turnover,
)
from alphaminer.evaluation.pool import AddResult, AlphaPool, PoolConfig, PoolMember, lasso_cd

__all__ = [
    "AddResult",
    "AlphaPool",
    "ICSummary",
    "PoolConfig",
    "PoolMember",
    "correlation_matrix",
    "daily_ic",
    "daily_rank_ic",
    "ic_stats",
    "ic_summary",
    "ic_summary_table",
    "lasso_cd",
    "max_correlation",
    "mutual_correlation",
    "rank_autocorrelation",
    "turnover",
]
