"""The paired benchmark: each technique's scenario, run off and on alternately on the same data.

`shop/bench/scenario.py` says what a scenario is; `shop/bench/scenarios/<technique>.py` holds
one per technique, named as its toggle. `python manage.py bench` runs them (docs/bench.md).

- `discovery.py` finds the scenario modules; `dataset.py` checks which data set is loaded.
- `measure.py` sends one request and measures it; `alternation.py` orders the runs (ABBA);
  `hooks.py` calls the modules' before()/after()/plans(); `answers.py` compares the answers.
- `statements.py` records the SQL a request sends, so a scenario can check its off side runs
  the naive code before it is timed.
- `runner.py` runs every scenario: off and on, the extra arms a scenario declares (the SQL
  floor, `floor.py`), and the cold runs (`cold.py` resets before each); `targets.py` checks
  the bounds a scenario declares. `scenarios/order_history.py` is composite: every toggle off
  against every one on.
- `samples.py` holds one request's measurement and a side's statistics, `results.py` what a
  run measured per scenario; `report.py`, `formatting.py` and `html.py` write it (`svg.py`
  draws the HTML's bars).
"""
