"""The Streamlit app's glue: the only part of `landscape` that imports streamlit (pages import it; the engine never).

Map (data flows one way: sidebar spec -> engine calls through the stage layer -> views -> page):

- `pages`: the `PAGES` table (title, file, icon, section, URL) that app.py, the AppTests and the browser test read.
- `state`: the sidebar's `AppSpec` (kept across page switches) and small per-session records.
- `engine`: cached engine calls and the "is it stored?" checks, which ask the stage layer only, over the store
  layered on the shipped demo snapshot (`landscape.demo`): the demo and a live run are the same calls.
- `cost`: the cost lines shown before a compute button (priced only for what is not stored).
- `warmup`: while no page is running, the later pages' imports (pandas, SciPy, scikit-learn) in the
  background.
- `widgets`: engine errors as `st.error`, downloadable figures and tables, progress bars.
- `views/`: what a page draws per kind of result (`poison`, `train`, `surfaces`, `study` for SAL and UD, `bench`,
  `cross_task`, ...);
  tables are methods of the engine's result objects (`SALTrace.table`, `UDReport.layer_table`,
  `SurfaceSet.grid_table`, ...), testable without Streamlit.

This package never imports the CLI package (`landscape.commands`); importing `landscape.app` imports nothing.
"""
