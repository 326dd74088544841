"""Stage 7, what a researcher reads (rules `aggregate`, `sensitivity_plot`, `report_*`; commands
`aemt aggregate`, `aemt report`): result `tables` computed once and rendered to `markdown` and `html`,
the `results` page, training `curves`, the data-`quality` page, the `sensitivity` plot and the
`robustness` tables and plot."""
