"""The imprinting method: data layout, GEN, NORM and AGG, one run (the estimator) and many at once
(the sweep engine), and the neural-collapse measures a sweep reports. Imports nothing above it."""
