"""Image-conditioned generators judged by their task's own measures, one module per task (a data source's
`task` member names it): super_resolution, refinement, translation. ganlab/evaluation.py judges the rest
and picks among these (make_evaluator)."""
