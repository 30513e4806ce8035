"""AlphaMiner: mining, combining and backtesting formulaic alpha factors."""

__version__ = "0.1.0"
