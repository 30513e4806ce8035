"""Which methods the per-method namespace templates are instantiated for.

A method either produces an alpha set (``<method>.alphas`` → ``combination`` → ``<method>.signal``)
or a signal directly (``<method>.signal``, e.g. AlphaNet). Add a new method's name here.
"""

#: methods whose ``<m>.alphas`` go through the ``combination`` template
ALPHA_SET_METHODS: tuple[str, ...] = ("oracle", "library", "gp", "alphagen", "alpha2",
                                      "alphaformer")
#: methods that write ``<m>.signal`` themselves
SIGNAL_METHODS: tuple[str, ...] = ("alphanet", "mlp", "lstm", "xgb", "lgbm")
#: every method that is backtested and reported
ALL_METHODS: tuple[str, ...] = ALPHA_SET_METHODS + SIGNAL_METHODS
