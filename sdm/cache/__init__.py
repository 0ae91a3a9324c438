"""The cache: one Protocol for replacement/admission policies, one small module per policy, and the
set-associative row cache they drive; shared by the simulator, the planner's prediction check and the runtime.
"""
