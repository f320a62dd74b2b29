"""The paper's figures (PAPER.md §D.2–D.8), one module per family, drawn with seaborn/matplotlib:
``k_sweep`` (Figs. 6, A.8), ``fewshot`` (Fig. 10), ``collapse`` (Figs. 11a, 11b, 12 and every
collapse metric), ``timing`` (GEN time), and what they share in ``common``. Each figure function
takes the runs (or the collapse table), draws the figure and returns a tidy table of exactly the
numbers it plots."""
