"""Factor evaluation: IC / RankIC / ICIR, diversity, turnover, the lasso alpha pool and the
candidate scorer (the mining kit's one way to score formulas)."""

from alphaminer.evaluation.metrics import (
    ICSummary,
    PreparedTarget,
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
from alphaminer.evaluation.pool import (
    AddResult,
    AlphaPool,
    PoolConfig,
    PoolMember,
    SampleCells,
    lasso_cd,
    mean_daily_corr,
)
from alphaminer.evaluation.scorer import FAILURE_KINDS, CandidateScorer, Score

__all__ = [
    "FAILURE_KINDS",
    "AddResult",
    "AlphaPool",
    "CandidateScorer",
    "ICSummary",
    "PoolConfig",
    "PoolMember",
    "PreparedTarget",
    "SampleCells",
    "Score",
    "correlation_matrix",
    "daily_ic",
    "daily_rank_ic",
    "ic_stats",
    "ic_summary",
    "ic_summary_table",
    "lasso_cd",
    "max_correlation",
    "mean_daily_corr",
    "mutual_correlation",
    "rank_autocorrelation",
    "turnover",
]
