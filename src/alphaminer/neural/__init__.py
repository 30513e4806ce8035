"""Neural methods: AlphaNet (operator-layer network over feature images) and ML baselines."""
